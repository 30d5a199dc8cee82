"""The database: the source of truth for people, consent, schedules, deliveries and replies.

Outbound rows flow enrolments -> deliveries; inbound rows flow inbox -> replies / check-ins.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy import Enum as SQLEnum
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from bot.db.encryption import EncryptedBytes, EncryptedJSON, EncryptedText
from bot.db.types import UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(), dict[str, Any]: JSON()}


def _enum(kind: type[StrEnum]) -> SQLEnum:
    # Stored as plain strings with no database-level enum, so adding a value needs no migration.
    return SQLEnum(kind, native_enum=False, create_constraint=False, length=24,
                   values_callable=lambda members: [m.value for m in members])


class ClientStatus(StrEnum):
    INVITED = "invited"  # invite created, no consent yet
    ACTIVE = "active"  # consented; may be paused (see Client.paused_until)
    STOPPED = "stopped"  # revoked consent with /stop
    UNREACHABLE = "unreachable"  # blocked the bot; nothing is sent until they come back


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # planned, waiting for its due time
    SENDING = "sending"  # claimed by a dispatcher (lease in claimed_at)
    SENT = "sent"  # in the client's chat, open for an answer
    ANSWERED = "answered"  # the client answered (it stays open for more words until expiry)
    EXPIRED = "expired"  # nobody answered before it closed
    SKIPPED = "skipped"  # not sent: client paused, stopped or unreachable at its time
    MISSED = "missed"  # not sent: later than the catch-up grace (downtime)
    FAILED = "failed"  # not sent: Telegram refused it for good, or retries ran out
    NOTIFIED = "notified"  # a notice (nothing to answer) is in the client's chat


OPEN_STATUSES = (DeliveryStatus.SENT, DeliveryStatus.ANSWERED)


class Therapist(Base):
    __tablename__ = "therapists"

    id: Mapped[int] = mapped_column(primary_key=True)
    display_name: Mapped[str] = mapped_column(EncryptedText())
    telegram_user_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    link_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    link_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    # Raised by "sign out everywhere": a dashboard session from an older epoch is refused.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The therapist's own zone, for the daily digest and the dashboard's dates.
    timezone: Mapped[str | None] = mapped_column(String(64))
    digest_at: Mapped[str | None] = mapped_column(String(5))  # local HH:MM; None: no digest
    digest_with_text: Mapped[bool] = mapped_column(default=False, server_default="0")
    digest_sent_on: Mapped[str | None] = mapped_column(String(10))  # local date of the last one

    clients: Mapped[list[Client]] = relationship(back_populates="therapist")


class Client(Base):
    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    therapist_id: Mapped[int] = mapped_column(ForeignKey("therapists.id"), index=True)
    display_name: Mapped[str] = mapped_column(EncryptedText())
    telegram_user_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    status: Mapped[ClientStatus] = mapped_column(_enum(ClientStatus), default=ClientStatus.INVITED)
    language_code: Mapped[str | None] = mapped_column(String(16))
    timezone: Mapped[str | None] = mapped_column(String(64))
    suggested_timezone: Mapped[str | None] = mapped_column(String(64))
    quiet_start: Mapped[str] = mapped_column(String(5))
    quiet_end: Mapped[str] = mapped_column(String(5))
    paused_until: Mapped[datetime | None]
    # The client's own check-in thresholds, set by their therapist; None means the practice's.
    # The consent version in force (see services.onboarding.consent_version), and the newer
    # version this client was last asked to agree to, so they are asked once, not every prompt.
    consent_version: Mapped[str | None] = mapped_column(String(48))
    consent_asked_version: Mapped[str | None] = mapped_column(String(48))
    # The one-time value in the "erase everything" button /delete showed last.
    erase_nonce: Mapped[str | None] = mapped_column(String(32))
    alert_intensity: Mapped[int | None] = mapped_column(Integer)
    alert_shutdown_days: Mapped[int | None] = mapped_column(Integer)
    # What the bot is waiting for the client to type (e.g. a time zone): conversation state
    # lives here, in the database, so a restart mid-conversation loses nothing.
    awaiting: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime]

    therapist: Mapped[Therapist] = relationship(back_populates="clients")


class Invite(Base):
    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"),
                                           index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class Consent(Base):
    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"),
                                           index=True)
    version: Mapped[str] = mapped_column(String(32))
    text_sha256: Mapped[str] = mapped_column(String(64))
    given_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class Enrolment(Base):
    """A client, or a couple, in a program: exactly one of client_id and couple_id is set."""

    __tablename__ = "enrolments"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"),
                                                  index=True)
    couple_id: Mapped[int | None] = mapped_column(ForeignKey("couples.id", ondelete="CASCADE"),
                                                  index=True)
    program_key: Mapped[str] = mapped_column(String(64))
    anchor_at: Mapped[datetime | None]
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    # Everything up to here has been turned into deliveries; the planner resumes from it.
    planned_through: Mapped[datetime | None]
    # How many prompts each step (by index) has drawn from its pool so far, so the next draw
    # needs no count of the enrolment's history. None: not counted yet (planned before 0009).
    pool_draws: Mapped[dict[str, int] | None] = mapped_column(JSON)
    ended_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    # A therapist's own recurring prompt for this client (program_key "custom"): the prompt as
    # chosen or written, and its one step; None for library programs.
    custom: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON())
    # The run this one carries on, when a program moved to a new medicine session: steps timed
    # from the program's start (a baseline questionnaire) fired in the first run, not again.
    continues_id: Mapped[int | None] = mapped_column(
        ForeignKey("enrolments.id", ondelete="SET NULL"))


class Delivery(Base):
    """One prompt to one client: the outbox row, and the record of what was sent."""

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_due", "status", "due_at"),
        Index("ix_deliveries_client_status", "client_id", "status"),
        Index("ix_deliveries_enrolment", "enrolment_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    enrolment_id: Mapped[int | None] = mapped_column(
        ForeignKey("enrolments.id", ondelete="SET NULL"))
    # enrolment:step:local-date for planned prompts, so planning twice creates nothing twice.
    dedupe_key: Mapped[str | None] = mapped_column(String(96), unique=True)
    prompt_key: Mapped[str] = mapped_column(String(64))
    # The prompt as it was when planned, so history stays true when the library changes.
    prompt: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON())  # may be personal
    scheduled_for: Mapped[datetime]  # the program's own time, before quiet hours moved it
    due_at: Mapped[datetime]  # not before this; retries move it forward
    expires_at: Mapped[datetime]
    status: Mapped[DeliveryStatus] = mapped_column(_enum(DeliveryStatus),
                                                   default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_at: Mapped[datetime | None]
    # Which dispatcher holds the lease: only it may renew the lease or record the send.
    claimed_by: Mapped[str | None] = mapped_column(String(32))
    sent_at: Mapped[datetime | None]
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    reminder_at: Mapped[datetime | None]
    reminder_message_id: Mapped[int | None] = mapped_column(BigInteger)
    answered_at: Mapped[datetime | None]
    # Which question of a multi-step prompt, or which part of a check-in, comes next.
    progress: Mapped[int] = mapped_column(Integer, default=0)
    closed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(200))  # error class, never client text
    # A paired prompt: the two deliveries of one moment share a pair group (see Couple).
    pair_group_id: Mapped[int | None] = mapped_column(
        ForeignKey("pair_groups.id", ondelete="CASCADE"), index=True)
    # The author's choice for a paired answer: None until chosen (their default then applies).
    shared: Mapped[bool | None]
    share_chosen_at: Mapped[datetime | None]
    # When this answer went to the partner; None while private, and forever if it was kept.
    revealed_at: Mapped[datetime | None]


class ReplyKind(StrEnum):
    TEXT = "text"
    VOICE = "voice"
    CHOICE = "choice"
    SCALE = "scale"


class Reply(Base):
    """Something a client told us: words, a voice note, or a button choice."""

    __tablename__ = "replies"
    __table_args__ = (
        UniqueConstraint("client_id", "telegram_message_id", name="uq_replies_message"),
        UniqueConstraint("delivery_id", "question", "kind", "button", name="uq_replies_button"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"),
                                           index=True)
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), index=True)
    question: Mapped[int] = mapped_column(Integer, default=0)  # step of a multi-step prompt
    kind: Mapped[ReplyKind] = mapped_column(_enum(ReplyKind))
    text: Mapped[str | None] = mapped_column(EncryptedText())
    value: Mapped[str | None] = mapped_column(String(64))  # a choice label or a scale number
    # Button answers have no message of their own; 1 marks them so one press replaces another.
    button: Mapped[int | None] = mapped_column(Integer)
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    voice_file_id: Mapped[str | None] = mapped_column(String(255))
    voice_duration: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    edited_at: Mapped[datetime | None]


class ReplyRevision(Base):
    """The words a reply had before the client edited it."""

    __tablename__ = "reply_revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    reply_id: Mapped[int] = mapped_column(ForeignKey("replies.id", ondelete="CASCADE"),
                                          index=True)
    text: Mapped[str | None] = mapped_column(EncryptedText())
    replaced_at: Mapped[datetime]


class VoiceNote(Base):
    __tablename__ = "voice_notes"

    reply_id: Mapped[int] = mapped_column(ForeignKey("replies.id", ondelete="CASCADE"),
                                          primary_key=True)
    mime_type: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(EncryptedBytes())


class NervousSystemState(StrEnum):
    GROUNDED = "grounded"
    ACTIVATED = "activated"
    SHUT_DOWN = "shut_down"


class CheckIn(Base):
    """A nervous-system check-in: where someone was and how strongly."""

    __tablename__ = "checkins"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"),
                                           index=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"),
                                             unique=True)
    state: Mapped[NervousSystemState | None] = mapped_column(_enum(NervousSystemState))
    intensity: Mapped[int | None] = mapped_column(Integer)
    recorded_at: Mapped[datetime]


class InboxUpdate(Base):
    """A Telegram update, stored before it is acknowledged; its payload is cleared once handled."""

    __tablename__ = "inbox"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    payload: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON())  # the client's words
    received_at: Mapped[datetime]
    processed_at: Mapped[datetime | None] = mapped_column(index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(200))


class AppState(Base):
    """Small facts the processes share, such as the bot's username."""

    __tablename__ = "app_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class Alert(Base):
    """Crisis language from a client, for their therapist; open until acknowledged.

    It holds no words, only a category and times; it outlives an erasure (client_id becomes
    NULL) because crisis referrals must stay countable.
    """

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="SET NULL"),
                                                  index=True)
    therapist_id: Mapped[int] = mapped_column(ForeignKey("therapists.id"), index=True)
    category: Mapped[str] = mapped_column(String(32))
    reply_id: Mapped[int | None] = mapped_column(ForeignKey("replies.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
    notified_at: Mapped[datetime | None]  # when the therapist's Telegram got it
    acknowledged_at: Mapped[datetime | None]


class Erasure(Base):
    """That a client's data was erased, when and at whose request: all the practice keeps."""

    __tablename__ = "erasures"

    id: Mapped[int] = mapped_column(primary_key=True)
    therapist_id: Mapped[int] = mapped_column(ForeignKey("therapists.id"), index=True)
    former_client_id: Mapped[int]  # no foreign key: the client row is gone
    requested_by: Mapped[str] = mapped_column(String(16))  # "client" (/delete) or "practice"
    rows_deleted: Mapped[int] = mapped_column(Integer)
    erased_at: Mapped[datetime]


class CoupleEnd(StrEnum):
    UNCOUPLED = "uncoupled"  # a partner typed /uncouple
    STOPPED = "stopped"  # a partner withdrew consent (/stop)
    DECLINED = "declined"  # a partner said "not now" to paired prompts


class Couple(Base):
    """Two clients of one therapist who agreed to paired prompts.

    Pending until both partners agree (each in their own chat), active until either ends it.
    """

    __tablename__ = "couples"

    id: Mapped[int] = mapped_column(primary_key=True)
    therapist_id: Mapped[int] = mapped_column(ForeignKey("therapists.id"), index=True)
    created_at: Mapped[datetime]
    active_at: Mapped[datetime | None]  # when the second partner agreed
    ended_at: Mapped[datetime | None]
    ended_by_client_id: Mapped[int | None] = mapped_column(
        ForeignKey("clients.id", ondelete="SET NULL"))
    end_reason: Mapped[CoupleEnd | None] = mapped_column(_enum(CoupleEnd))

    partners: Mapped[list[CouplePartner]] = relationship(
        back_populates="couple", order_by="CouplePartner.position", lazy="selectin")


class CouplePartner(Base):
    """One partner of a couple, with their own agreement to pairing and their usual share choice."""

    __tablename__ = "couple_partners"
    __table_args__ = (UniqueConstraint("couple_id", "client_id", name="uq_couple_partners_client"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    couple_id: Mapped[int] = mapped_column(ForeignKey("couples.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    # The client's id while the couple has not ended, NULL after: unique, so the database itself
    # keeps a client in at most one couple at a time (pending or active).
    open_client_id: Mapped[int | None] = mapped_column(Integer, unique=True)
    position: Mapped[int] = mapped_column(Integer)  # 0 or 1, the order the therapist linked them
    agreed_at: Mapped[datetime | None]
    declined_at: Mapped[datetime | None]
    shares_by_default: Mapped[bool | None]  # chosen when agreeing; each answer may differ

    couple: Mapped[Couple] = relationship(back_populates="partners")


class PairKind(StrEnum):
    PROMPT = "prompt"  # a paired prompt from a couple program
    EXERCISE = "exercise"  # a repair exercise a partner started with /repair


class PairState(StrEnum):
    INVITED = "invited"  # an exercise one partner started; the other has not joined yet
    OPEN = "open"  # waiting for both answers (and each author's share choice)
    REVEALED = "revealed"  # both answered; each got what the other chose to share
    HELD = "held"  # crisis language in an answer: nothing passed on; the therapist was alerted
    EXPIRED = "expired"  # closed before both answered: nothing passed on
    DECLINED = "declined"  # the other partner declined the exercise: nothing passed on, ever
    CANCELLED = "cancelled"  # the couple ended first: nothing passed on


class PairGroup(Base):
    """One paired moment: a prompt (or exercise) to both partners, revealed only when both answered."""

    __tablename__ = "pair_groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    couple_id: Mapped[int] = mapped_column(ForeignKey("couples.id", ondelete="CASCADE"), index=True)
    kind: Mapped[PairKind] = mapped_column(_enum(PairKind))
    state: Mapped[PairState] = mapped_column(_enum(PairState), default=PairState.OPEN, index=True)
    # Couple enrolment, step and local date for planned prompts: planning twice creates one group.
    dedupe_key: Mapped[str | None] = mapped_column(String(96), unique=True)
    started_by_client_id: Mapped[int | None] = mapped_column(
        ForeignKey("clients.id", ondelete="SET NULL"))
    expires_at: Mapped[datetime]  # shared by both partners: the later of their two expiries
    created_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    # A 20-minute repair talk after an exercise: proposed by one partner, accepted by the other.
    talk_proposed_by_client_id: Mapped[int | None] = mapped_column(
        ForeignKey("clients.id", ondelete="SET NULL"))
    talk_at: Mapped[datetime | None]
    talk_accepted_at: Mapped[datetime | None]


class MedicineSession(Base):
    """A medicine session a therapist recorded: integration programs are anchored to it."""

    __tablename__ = "medicine_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("therapists.id"))
    created_at: Mapped[datetime]


class LoginLink(Base):
    """A one-time dashboard sign-in link; only its hash is kept."""

    __tablename__ = "login_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    therapist_id: Mapped[int] = mapped_column(ForeignKey("therapists.id", ondelete="CASCADE"),
                                              index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class AuditEntry(Base):
    """Who looked at or changed which client's data, when, and through what.

    The client id is kept without a foreign key, so the record of a read outlives the data read.
    `detail` names what was done (a program key, an export format), never client text.
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    therapist_id: Mapped[int | None] = mapped_column(Integer, index=True)  # None: the admin
    channel: Mapped[str] = mapped_column(String(16))  # web, api, telegram, cli
    action: Mapped[str] = mapped_column(String(48))
    client_id: Mapped[int | None] = mapped_column(Integer, index=True)
    detail: Mapped[str | None] = mapped_column(String(200))


class QuestionnaireStatus(StrEnum):
    IN_PROGRESS = "in_progress"  # some items answered, the questionnaire still open
    COMPLETE = "complete"  # every item answered: scored
    INCOMPLETE = "incomplete"  # closed half-done: the answers given are kept, with no score


class QuestionnaireResponse(Base):
    """A client's answers to one questionnaire (PHQ-9, GAD-7...), one per delivery.

    The answers, the total and the band are health data: sealed together in `answers`, worked
    out in Python (a client has a few dozen of these, so nothing needs them in SQL). `item` is
    the item being asked now, so the questionnaire resumes where it was after any interruption.
    """

    __tablename__ = "questionnaire_responses"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"),
                                           index=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"),
                                             unique=True)
    instrument: Mapped[str] = mapped_column(String(64))  # the prompt key, as on the delivery
    status: Mapped[QuestionnaireStatus] = mapped_column(
        _enum(QuestionnaireStatus), default=QuestionnaireStatus.IN_PROGRESS)
    item: Mapped[int] = mapped_column(Integer, default=0)
    # {"values": [value or null per item], "total": n, "band": label} (total and band once
    # complete).
    answers: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON())
    started_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]  # complete, or closed half-done
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id", ondelete="SET NULL"))


class SendPace(Base):
    """Telegram's overall limit, shared by every bot process on PostgreSQL: the next free send
    slot (advanced by each process as it reserves slots) and a pause after a 429."""

    __tablename__ = "send_pace"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    next_at: Mapped[datetime]
    paused_until: Mapped[datetime | None]
