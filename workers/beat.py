"""Beat's scheduler with Redis: celery-redbeat's, which keeps one beat sending at a time by a
lock in Redis, made to wait out a Redis outage as Celery's own scheduler does.

redbeat touches Redis in three places, and an error in any of them would stop beat for good:
- as beat starts, it stores the schedule there (its entries and when each last ran); beat
  then dies before its first tick;
- as beat starts, it takes the lock (on Celery's beat_init signal, which swallows the error
  and leaves beat without a lock: its first tick then fails on the missing lock);
- on every tick, it extends the lock and reads what is due.
Here a beat that starts while Redis is away stores its schedule and takes its lock on the
first tick that reaches Redis; a tick that cannot reach Redis sends nothing and tries again a
moment later. A lock that lapsed meanwhile (Redis away longer than the lock's timeout, or
restarted with its keys gone) may be another beat's by now: this one sends nothing until it
has taken the lock again, and then stores the schedule again in case Redis lost it too.
"""

from celery.utils.log import get_logger
from redbeat import RedBeatScheduler
from redbeat.schedulers import LUA_EXTEND_TO_SCRIPT, get_redis
from redis.exceptions import LockError, RedisError

logger = get_logger("celery.beat")


class LockedScheduler(RedBeatScheduler):
    # Whether the schedule still has to be stored in Redis: beat started while Redis was away,
    # or took the lock again after a lapse that may have come with Redis losing its keys.
    schedule_pending = False

    def setup_schedule(self):
        try:
            super().setup_schedule()
        except RedisError as error:
            logger.warning(
                "beat: Redis is away (%s); the schedule is stored once it is back",
                type(error).__name__,
            )
            self.schedule_pending = True
        else:
            self.schedule_pending = False

    def tick(self, *args, **kwargs):
        try:
            if self.lock is None and self.lock_key:
                logger.warning("beat: Without the lock; sending nothing until this beat has it")
                return self._take_the_lock()
            if self.schedule_pending:
                self.setup_schedule()
                if self.schedule_pending:
                    return self.max_interval
            return super().tick(*args, **kwargs)
        except LockError:
            logger.warning("beat: The lock lapsed; sending nothing until this beat has it again")
            return self._take_the_lock()
        except RedisError as error:
            logger.warning("beat: Redis is away (%s); trying again shortly", type(error).__name__)
            return self.max_interval

    def _take_the_lock(self) -> float:
        try:
            lock = self.lock or self._new_lock()
            if lock.acquire(blocking=False):
                logger.info("beat: Acquired lock")
                self.lock = lock
                self.schedule_pending = True  # a Redis that lost the lock may have lost it too
                return 0
        except RedisError:
            pass
        return self.max_interval

    def _new_lock(self):
        """The lock as redbeat makes it on beat_init, for a beat that could not take it then."""
        client = get_redis(self.app)
        lock = client.lock(self.lock_key, timeout=self.lock_timeout, sleep=self.max_interval)
        # redbeat's extend sets the lock's time to live, where redis-py's would add to it.
        lock.lua_extend = client.register_script(LUA_EXTEND_TO_SCRIPT)
        return lock

    def close(self):
        # A beat stopped while Redis is away leaves its lock to lapse by itself.
        try:
            super().close()
        except RedisError as error:
            logger.warning(
                "beat: Redis is away (%s); the lock lapses by itself", type(error).__name__
            )
            self.lock = None
            super().close()  # the rest of closing, the lock left alone
