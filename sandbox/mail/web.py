"""The web side: a page to read caught email and a JSON API for tests."""

from datetime import datetime

from flask import Flask, Response, abort, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from sandbox.mail.store import MailStore

# The email's own HTML is shown in a sandboxed iframe; this policy, inherited by the iframe,
# also stops it loading anything from the network (remote images, tracking pixels).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
)


def create_mail_catcher_app(store: MailStore) -> Flask:
    app = Flask(__name__, template_folder="templates", static_folder=None)
    register_pages(app, store)
    register_api(app, store)
    register_errorhandlers(app)
    register_security_headers(app)
    app.add_template_filter(_readable_time, "readable_time")
    return app


def register_pages(app: Flask, store: MailStore) -> None:
    @app.get("/")
    def message_list():
        return render_template("mail_catcher/index.html", messages=store.messages())

    @app.get("/messages/<message_id>")
    def message_page(message_id: str):
        message = store.get(message_id)
        if message is None:
            abort(404)
        return render_template("mail_catcher/message.html", message=message)


def register_api(app: Flask, store: MailStore) -> None:
    @app.get("/api/messages")
    def api_messages():
        return jsonify([m.summary() for m in store.messages(to=request.args.get("to"))])

    @app.get("/api/messages/<message_id>")
    def api_message(message_id: str):
        message = store.get(message_id)
        if message is None:
            abort(404)
        return jsonify(message.as_dict())

    @app.get("/api/messages/<message_id>/raw")
    def api_message_raw(message_id: str):
        """The message as it arrived (RFC 5322), to check its headers and parts."""
        message = store.get(message_id)
        if message is None:
            abort(404)
        return Response(message.raw, content_type="message/rfc822")

    @app.delete("/api/messages")
    def api_clear():
        return jsonify({"deleted": store.clear()})

    @app.get("/api/faults")
    def api_faults():
        return jsonify({"fail_next": store.failures_to_inject})

    @app.post("/api/faults")
    def api_set_faults():
        count = (request.get_json(silent=True) or {}).get("fail_next")
        # bool is an int in Python; true/false is not a count.
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            return jsonify({"error": "fail_next must be a whole number, 0 or more."}), 400
        store.fail_next(count)
        return jsonify({"fail_next": store.failures_to_inject})


def register_errorhandlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if request.path.startswith("/api/"):
            return jsonify({"error": error.name}), error.code
        page = render_template("mail_catcher/error.html", error=error)
        return page, error.code


def register_security_headers(app: Flask) -> None:
    @app.after_request
    def security_headers(response):
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response


def _readable_time(iso_time: str) -> str:
    return datetime.fromisoformat(iso_time).strftime("%Y-%m-%d %H:%M:%S UTC")
