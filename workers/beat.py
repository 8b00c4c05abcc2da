"""Beat's scheduler with Redis: celery-redbeat's, which keeps one beat sending at a time by a
lock in Redis, made to wait out a Redis outage as Celery's own scheduler does.

redbeat extends its lock and reads the schedule from Redis on every tick; an error there
would stop beat for good. Here a tick that cannot reach Redis sends nothing and tries again a
moment later. A lock that lapsed meanwhile (Redis away longer than the lock's timeout) may be
another beat's by now: this one sends nothing until it has taken the lock again.
"""

from celery.utils.log import get_logger
from redbeat import RedBeatScheduler
from redis.exceptions import LockError, RedisError

logger = get_logger("celery.beat")


class LockedScheduler(RedBeatScheduler):
    def tick(self, *args, **kwargs):
        try:
            return super().tick(*args, **kwargs)
        except LockError:
            logger.warning("beat: The lock lapsed; sending nothing until this beat has it again")
            return self._take_the_lock_again()
        except RedisError as error:
            logger.warning("beat: Redis is away (%s); trying again shortly", type(error).__name__)
            return self.max_interval

    def _take_the_lock_again(self) -> float:
        try:
            if self.lock.acquire(blocking=False):
                logger.info("beat: Acquired lock again")
                return 0
        except RedisError:
            pass
        return self.max_interval
