"""Error pages speak to whoever reads them: a patient's links say nothing of administrators
and lead to no staff page; staff pages keep the staff layout; API clients get JSON."""

import pytest

# What these tests check happens before or beside any query: SQLite alone runs them.
pytestmark = pytest.mark.any_database


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("/join/no-such-call/payments/no-such-request/pay", "This call link is not valid"),
        ("/join/no-such-call/anything/else", "ask the clinic for a new one"),
    ],
)
def test_a_patient_link_that_finds_nothing_is_told_in_the_patients_words(client, path, said):
    answer = client.get(path)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 404
    assert said in page
    assert "Back to the start" not in page  # the start is the staff sign-in
    assert "administrator" not in page
    assert "Card details are entered on Stripe, never in vcpay." in page


def test_a_staff_page_that_finds_nothing_keeps_the_staff_layout(client):
    page = client.get("/no-such-page").get_data(as_text=True)
    assert "It may have moved, or you may not have access." in page
    assert 'href="/">Back to the start' in page


def test_an_api_client_gets_json_on_a_patient_path(client):
    answer = client.get("/join/no-such-call/else", headers={"Accept": "application/json"})
    assert answer.status_code == 404
    assert answer.json["error"]["status"] == 404
    assert "ask the clinic" in answer.json["error"]["message"]
