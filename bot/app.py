"""The one wiring point: settings and services in, a running bot out.

Order of start-up (written once, here): database and library, the PTB Application with our
rate limiter and no Updater, handlers in the order below, then the planner, the dispatcher and
the housekeeping jobs on PTB's JobQueue, and last the inbox poller.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from starlette.routing import Route
from telegram import BotCommand, Update
from telegram.error import BadRequest, Forbidden
from telegram.ext import (
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot import messages
from bot.clock import Clock
from bot.config import Settings
from bot.db.engine import Database
from bot.handlers import (
    answers,
    controls,
    couples,
    fallback,
    onboarding,
    privacy,
    questionnaires,
    therapist,
)
from bot.handlers.common import CONTEXT_TYPES
from bot.handlers.context import InterludeApplication, InterludeContext, Services
from bot.handlers.crisis import send_pair_held_alerts
from bot.ingest.inbox import Inbox
from bot.ingest.polling import ALLOWED_UPDATES, InboxPoller, UpdatesRequest
from bot.ingest.webhook import DEFAULT_PATH, webhook_routes
from bot.library import Library
from bot.logs import quiet_library_loggers
from bot.messages import render
from bot.safety.screening import cached_screener
from bot.scheduling.dispatcher import Dispatcher
from bot.scheduling.http import AiohttpRequest
from bot.scheduling.planner import Planner
from bot.scheduling.ratelimit import SharedPace, TelegramRateLimiter
from bot.scheduling.sender import TelegramSender
from bot.services import couples as couple_service
from bot.services import privacy as privacy_service
from bot.services import questionnaires as questionnaire_service
from bot.services.review import remember_bot_username

log = logging.getLogger(__name__)
DEMO_TOKEN = "123456789:interlude-demo"  # noqa: S105 - not a secret: only the emulator takes it
HOUSEKEEPING_SECONDS = 30
PLANNING_SECONDS = 600
RETENTION_SECONDS = 24 * 3600  # daily (and once a minute after each start)
DIGEST_SECONDS = 60
CONNECTIONS = 64  # HTTP connections to the Bot API, and requests in flight at most


def register_handlers(application: InterludeApplication) -> None:
    """Handlers in the order they are tried. Only private chats are served; groups are ignored."""
    private = filters.ChatType.PRIVATE
    # /help, /pause and /resume mean the therapist's commands when a linked therapist sends them,
    # and the client's own otherwise; the therapist-only commands are unknown to everyone else.
    commands = [
        ("start", onboarding.start),
        ("help", therapist.for_therapists(therapist.help_for_therapist, controls.help_command)),
        ("pause", therapist.pause_command(controls.pause)),
        ("resume", therapist.resume_command(controls.resume)), ("stop", controls.stop),
        ("timezone", controls.timezone), ("quiet", controls.quiet),
        ("clients", therapist.clients), ("client", therapist.client), ("invite", therapist.invite),
        ("send", therapist.send), ("alerts", therapist.alert_list),
        ("dashboard", therapist.dashboard), ("digest", therapist.digest_command),
        ("mydata", privacy.my_data), ("delete", privacy.delete_request),
        ("uncouple", couples.uncouple), ("couple", couples.couple_command), ("repair", couples.repair),
    ]
    for name, callback in commands:
        application.add_handler(CommandHandler(name, callback, filters=private))
    application.add_handler(CallbackQueryHandler(onboarding.consent_answer, pattern=r"^consent:"))
    application.add_handler(CallbackQueryHandler(privacy.delete_answer, pattern=r"^erase:"))
    application.add_handler(CallbackQueryHandler(onboarding.timezone_button, pattern=r"^tz:"))
    application.add_handler(CallbackQueryHandler(onboarding.quiet_button, pattern=r"^quiet:"))
    application.add_handler(CallbackQueryHandler(answers.checkin_button, pattern=r"^ci:"))
    application.add_handler(CallbackQueryHandler(answers.answer_button, pattern=r"^ans:"))
    application.add_handler(CallbackQueryHandler(questionnaires.answer_button, pattern=r"^qn:"))
    application.add_handler(CallbackQueryHandler(couples.pairing_button, pattern=r"^cp:"))
    application.add_handler(CallbackQueryHandler(couples.share_button, pattern=r"^sh:"))
    application.add_handler(CallbackQueryHandler(couples.invitation_button, pattern=r"^rj:"))
    application.add_handler(CallbackQueryHandler(couples.step_button, pattern=r"^rs:"))
    application.add_handler(CallbackQueryHandler(couples.talk_button, pattern=r"^rt:"))
    application.add_handler(CallbackQueryHandler(therapist.acknowledge_button, pattern=r"^alert:ack:"))
    application.add_handler(MessageHandler(
        filters.UpdateType.EDITED_MESSAGE & private & filters.TEXT, answers.edited))
    messages_only = filters.UpdateType.MESSAGE & private
    application.add_handler(MessageHandler(messages_only & filters.COMMAND, fallback.unknown_command))
    application.add_handler(MessageHandler(messages_only & filters.TEXT, answers.words))
    application.add_handler(MessageHandler(messages_only & filters.VOICE, answers.voice))
    # Registered last: anything else a person sends in a private chat (stickers, photos...).
    application.add_handler(MessageHandler(messages_only, fallback.unsupported))
    application.add_handler(CallbackQueryHandler(_stale_button))
    application.add_error_handler(_on_error)


async def _stale_button(update: Update, context: InterludeContext) -> None:
    """A button whose data nothing recognises (old or forged): answered, nothing done."""
    if update.callback_query is not None:
        await update.callback_query.answer(render(messages.BUTTON_NOT_FOR_YOU, None))


async def _on_error(update: object, context: InterludeContext) -> None:
    """Log the error's class and the update id only (never text); the inbox retries the update."""
    error = context.error
    update_id = update.update_id if isinstance(update, Update) else None
    if isinstance(error, Forbidden | BadRequest):
        log.warning("Telegram refused an answer to update %s: %s", update_id, type(error).__name__)
        return
    log.error("handling update %s failed: %s", update_id, type(error).__name__,
              exc_info=(type(error), error, error.__traceback__) if error else None)
    # Telegram refusing an answer (above) is not mended by a retry; anything else (network,
    # database, a bug) is tried again from the inbox.
    if update_id is not None:
        context.services.failed_updates.add(update_id)


@dataclass
class Runtime:
    """A built bot: the application and the loops that drive it."""

    application: InterludeApplication
    services: Services
    planner: Planner
    dispatcher: Dispatcher
    inbox: Inbox
    poller: InboxPoller
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self, *, poll: bool = True, jobs: bool = True, webhook: str | None = None,
                    secret: str | None = None) -> None:
        """Start the bot. With `webhook` (a public URL), Telegram is told to POST updates there
        with `secret` in a header, and the inbox is handled as they arrive; otherwise it is
        polled (unless `poll` is False: tests that drive the bot by hand)."""
        await self.application.initialize()
        await self._cache_identity()
        await self.application.start()
        await self.application.bot.set_my_commands(
            [BotCommand(name, render(text)) for name, text in messages.CLIENT_COMMANDS])
        await self.planner.plan()
        self._stopping.clear()
        if jobs:
            self._schedule_jobs()
        if webhook is not None:
            await self.application.bot.set_webhook(webhook, secret_token=secret,
                                                   allowed_updates=ALLOWED_UPDATES)
            self._tasks.append(asyncio.create_task(self.poller.run(fetch=False),
                                                   name="inbox-handler"))
        elif poll:
            await self.application.bot.delete_webhook()
            self._tasks.append(asyncio.create_task(self.poller.run(), name="inbox-poller"))

    def webhook_routes(self, secret: str, path: str = DEFAULT_PATH) -> list[Route]:
        """The webhook endpoint for this bot, to serve or to mount in another ASGI app."""
        return webhook_routes(self.inbox, secret, path, on_stored=self.poller.wake)

    def _schedule_jobs(self) -> None:
        queue = self.application.job_queue
        assert queue is not None
        settings = self.services.settings
        # APScheduler skips a job that starts more than misfire_grace_time late (1 s by default,
        # which a busy loop exceeds); these jobs are idempotent, so run them late rather than not.
        options = {"misfire_grace_time": None, "coalesce": True, "max_instances": 1}
        if settings.dispatch_interval_seconds > 0:
            # A loop of its own rather than a job: it keeps sends in flight across rounds.
            self._tasks.append(asyncio.create_task(self.dispatcher.run(self._stopping),
                                                   name="dispatcher"))
        queue.run_repeating(self._housekeeping, HOUSEKEEPING_SECONDS, first=5,
                            name="housekeeping", job_kwargs=options)
        queue.run_repeating(self._plan, PLANNING_SECONDS, first=PLANNING_SECONDS,
                            name="planner", job_kwargs=options)
        queue.run_repeating(self._retention, RETENTION_SECONDS, first=60,
                            name="retention", job_kwargs=options)
        queue.run_repeating(self._digests, DIGEST_SECONDS, first=DIGEST_SECONDS,
                            name="digests", job_kwargs=options)

    async def _housekeeping(self, _context: Any) -> None:
        await self.housekeeping()

    async def housekeeping(self) -> None:
        """Settle and close paired prompts, then close expired prompts and send reminders, then
        mark questionnaires left half-done in a closed prompt as incomplete."""
        services = self.services
        async with services.db.transaction() as session:
            alerts = await couple_service.housekeeping(session, services.clock, services.screener)
        await send_pair_held_alerts(self.application.bot, services, alerts)
        await self.dispatcher.housekeeping()
        async with services.db.transaction() as session:
            await questionnaire_service.close_expired(session, services.clock)

    async def _plan(self, _context: Any) -> None:
        await self.planner.plan()

    async def _retention(self, _context: Any) -> None:
        await self.purge_old_replies()

    async def purge_old_replies(self) -> int:
        """The retention policy: replies older than the configured days are deleted."""
        services = self.services
        async with services.db.transaction() as session:
            purged = await privacy_service.purge_old_replies(session, services.clock,
                                                     services.settings.reply_retention_days)
        if purged:
            log.info("retention: %d replies older than %d days deleted", purged,
                     services.settings.reply_retention_days)
        return purged

    async def _digests(self, _context: Any) -> None:
        await self.send_digests()

    async def send_digests(self) -> int:
        """Therapists' daily digests whose time has come (the job runs this every minute)."""
        return await therapist.send_due_digests(self.application, self.services)

    async def _cache_identity(self) -> None:
        async with self.services.db.transaction() as session:
            await remember_bot_username(session, self.application.bot.username)

    async def stop(self) -> None:
        self.poller.stop()
        self._stopping.set()
        for task in self._tasks:
            try:
                await asyncio.wait_for(task, timeout=10)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
        self._tasks.clear()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()

    async def wait(self) -> None:
        """Run until the poller ends (it ends only on a fatal error) or the task is cancelled."""
        if self._tasks:
            await asyncio.gather(*self._tasks)
        else:
            await asyncio.Event().wait()


def build_runtime(settings: Settings, db: Database, library: Library, clock: Clock,
                  *, api_url: str | None = None, token: str | None = None) -> Runtime:
    quiet_library_loggers()  # a guarantee of the bot, not of one way of starting it
    api = (api_url or settings.telegram_api_url).rstrip("/")
    secret = token or (settings.telegram_token.get_secret_value() if settings.telegram_token
                       else DEMO_TOKEN)
    planner = Planner(db, library, clock, settings)
    screener = cached_screener(settings.prompts_dir / "safety.yaml", settings.cache_dir)
    services = Services(db=db, library=library, clock=clock, settings=settings, planner=planner,
                        screener=screener)
    # Several processes may share a PostgreSQL database, and Telegram's limit is per bot.
    shared = None if db.is_sqlite else SharedPace(db, settings.rate_limit_per_second)
    limiter = TelegramRateLimiter(per_second=settings.rate_limit_per_second,
                                  per_chat=settings.rate_limit_per_chat,
                                  chat_burst=settings.rate_limit_chat_burst, shared=shared,
                                  connections=CONNECTIONS)
    updates_request = UpdatesRequest()
    application = (
        ApplicationBuilder()
        .token(secret)
        .base_url(f"{api}/bot")
        .base_file_url(f"{api}/file/bot")
        .updater(None)  # at-most-once; our InboxPoller replaces it
        .rate_limiter(limiter)
        .context_types(CONTEXT_TYPES)
        .application_class(InterludeApplication, kwargs={"services": services})
        .request(AiohttpRequest(CONNECTIONS))
        .get_updates_request(updates_request)
        .build()
    )
    assert isinstance(application, InterludeApplication)
    register_handlers(application)
    inbox = Inbox(db, clock)
    dispatcher = Dispatcher(db, TelegramSender(application.bot), clock, settings)
    poller = InboxPoller(application, inbox, services.failed_updates, updates_request,
                         settings.poll_timeout_seconds)
    return Runtime(application, services, planner, dispatcher, inbox, poller)
