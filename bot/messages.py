"""Every sentence the bot says to a person, in one catalog ready for translation.

Strings are marked with N_() so `make messages` (pybabel extract) collects them into
bot/locale/interlude.pot; render() looks each one up through gettext in the person's language,
falling back to the English written here. The prompt library is not here: it is YAML in prompts/.
Voice: warm, plain, short; invite, never demand; never clinical.
"""

from __future__ import annotations

import gettext
from functools import cache
from pathlib import Path

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "interlude"


def N_(message: str) -> str:  # the name gettext tools look for
    """Marks a string for extraction; translation happens at render()."""
    return message


@cache
def _translations(language: str) -> gettext.NullTranslations:
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[language], fallback=True)


def render(message: str, language: str | None = None, **values: object) -> str:
    """The message in the person's language (by Telegram's language code), filled in."""
    translated = _translations((language or "en").split("-")[0]).gettext(message)
    return translated.format(**values) if values else translated


# Onboarding ---------------------------------------------------------------------------------
WELCOME = N_(
    "Hi {name}. I'm the between-sessions companion from {practice}. {therapist} invited you "
    "here.\n\n"
    "Now and then I'll send you a short reflection or check-in that {therapist} chose for you. "
    "You can answer with words, a voice note or a button — or not at all. There's no right answer."
)
PRIVACY = N_(
    "What I keep: your answers, when prompts were sent, and the settings you choose. "
    "Who reads it: {therapist}, to prepare for your sessions. No one else at the practice reads "
    "your answers. {retention}\n\n"
    "Telegram chats with bots are not end-to-end encrypted, so please share only what you're "
    "comfortable writing here. You can pause with /pause or stop at any time with /stop. "
    "/mydata sends you a copy of everything I keep about you, and /delete erases it."
)
RETENTION_DAYS = N_("Answers are deleted after {days} days.")
RETENTION_NONE = N_("Answers are kept until you or the practice delete them.")
CONSENT_RENEWAL = N_(
    "Before your next prompt: {practice} has updated what I ask you to agree to. Here it is "
    "in full."
)
CONSENT_RENEWED = N_("Thank you. Your prompts carry on as before.")
CONSENT_RENEWAL_LATER = N_(
    "That's okay. I'll hold your prompts until you agree. Send /start whenever you're ready, "
    "or /stop to end."
)
NOT_AN_EMERGENCY_SERVICE = N_(
    "I'm not an emergency service and I can't respond to emergencies. {crisis_line}"
)
CONSENT_QUESTION = N_("Is it okay for me to start?")
CONSENT_YES = N_("Yes, I agree")
CONSENT_NOT_NOW = N_("Not now")
CONSENT_DECLINED = N_(
    "That's completely okay. I haven't saved anything. If you change your mind, open your "
    "invite link again."
)
CONSENT_THANKS = N_("Thank you. Two quick settings, so prompts arrive at good times for you.")
INVITE_UNKNOWN = N_(
    "I don't recognise this link. Please check it, or ask your therapist for a new one."
)
INVITE_EXPIRED = N_("This invite link has expired. Your therapist can give you a fresh one.")
INVITE_USED = N_(
    "This invite link has already been used. If that was you, you're all set: type /help. "
    "If not, please ask your therapist for a new link."
)
NOT_INVITED = N_(
    "Hello. I'm a companion that therapy practices use between sessions, and I can only talk "
    "with people whose therapist has invited them. If your therapist gave you a link, please "
    "open it again."
)
WELCOME_BACK = N_("Welcome back. You're all set; type /help to see what you can do.")

# Time zone and quiet hours ------------------------------------------------------------------
TIMEZONE_CONFIRM = N_(
    "It looks like you're on {zone} time, where it's {local_time} now. Is that right?"
)
TIMEZONE_YES = N_("Yes, that's right")
TIMEZONE_OTHER = N_("Choose another")
TIMEZONE_QUESTION = N_(
    "Which time zone are you in? Pick one below, or type a city or a zone name, "
    "like Berlin or America/Chicago."
)
TIMEZONE_NOT_FOUND = N_(
    "I couldn't find that time zone. Try a city like Berlin or Chicago, or a name like "
    "America/Chicago."
)
TIMEZONE_SET = N_("Got it: {zone}, where it's {local_time} now.")
TIMEZONE_CURRENT = N_("Your time zone is {zone}, where it's {local_time} now.")
TIMEZONE_CHANGE = N_("Change time zone")
QUIET_HOURS_QUESTION = N_(
    "I won't send anything between {start} and {end}, your time. Does that suit you?"
)
QUIET_HOURS_KEEP = N_("That suits me")
QUIET_HOURS_CHANGE = N_("Change quiet hours")
QUIET_HOURS_ASK = N_("When would you like me to stay quiet? Type two times, like 22:00-07:30.")
QUIET_HOURS_UNREADABLE = N_("I couldn't read that. Try two times, like 22:00-07:30.")
QUIET_HOURS_SET = N_("Quiet hours: {start} to {end}. I'll stay silent then.")
QUIET_HOURS_CURRENT = N_("Your quiet hours are {start} to {end}.")
ALL_SET_NEXT = N_("You're all set. Your first prompt will come {when}. Type /help any time.")
ALL_SET_LATER = N_(
    "You're all set. Your therapist will choose prompts for you soon. Type /help any time."
)

# Answers ------------------------------------------------------------------------------------
CHECKIN_GROUNDED = N_("Grounded")
CHECKIN_ACTIVATED = N_("Activated")
CHECKIN_SHUT_DOWN = N_("Shut down")
CHECKIN_INTENSITY = N_(
    "And how strong is it right now, from 0 (barely there) to 10 (as strong as it gets)?"
)
CHECKIN_WORDS = N_(
    "Thank you. If you'd like, add a few words about what your body is doing right now: "
    "breath, chest, jaw, stomach. Or leave it here; that's fine too."
)
CHECKIN_STATE_CHOSEN = N_("You chose: {state}.")
CHECKIN_INTENSITY_CHOSEN = N_("You chose: {state}, {intensity} of 10.")
THANKS_WORDS = N_("Thank you. I've kept this for your therapist.")
THANKS_VOICE = N_("Thank you. I've kept your voice note for your therapist.")
THANKS_CHOICE = N_("Thank you. Noted: {value}.")
THANKS_MORE_WORDS = N_("Thank you for adding that.")
STEP_MARKER = N_("({number} of {total})")
STEPS_DONE = N_("That was the last step. Thank you for taking the time.")
UNPROMPTED_MESSAGE = N_(
    "Thank you. I've saved this for your therapist to read. I can't reply to messages myself, "
    "so if you need your therapist sooner, please contact the practice directly."
)
PROMPT_CLOSED = N_("This one has closed, so there's no need to answer it now.")
BUTTON_NOT_FOR_YOU = N_("That button doesn't work here.")
ONLY_WORDS_AND_VOICE = N_(
    "I can only keep words and voice notes here, so I haven't saved this one."
)
REMINDER = N_("A gentle nudge: this one is still open if you'd like to answer. No pressure.")

# Questionnaires (PHQ-9, GAD-7): the wording of the items is the instrument's own, in prompts/
QUESTIONNAIRE_MARKER = N_("{title} · {number} of {total}")
QUESTIONNAIRE_ALERT_NOTE = N_(
    "Before you start: your therapist reads your answer to question {number} (“{item}”). If "
    "it's anything other than “{none}”, they're told straight away, and I'll share where you "
    "can find support."
)
QUESTIONNAIRE_BACK = N_("‹ Back one")
QUESTIONNAIRE_DONE = N_(
    "{title}: all {total} answered. Thank you for taking the time; your therapist will see "
    "your answers."
)
QUESTIONNAIRE_FINISHED = N_("You've already answered this one. Thank you.")
QUESTIONNAIRE_WHERE_YOU_WERE = N_("Here's where you left off, whenever you're ready:")
QUESTIONNAIRE_SAFETY_REPLY = N_(
    "Thank you for answering that honestly. {therapist} has been told, so they can reach out "
    "to you.\n\nI can't respond to emergencies myself. If these thoughts feel strong right "
    "now, please reach out to one of these:\n\n{resources}"
)

# Controls -----------------------------------------------------------------------------------
HELP = N_(
    "Here's what you can do:\n"
    "/pause — take a break (add a number of days, like /pause 3)\n"
    "/resume — start prompts again\n"
    "/timezone — check or change your time zone\n"
    "/quiet — check or change your quiet hours\n"
    "/stop — stop all prompts and withdraw your consent\n"
    "/mydata — a copy of everything I keep about you\n"
    "/delete — erase your answers and details\n\n"
    "To answer a prompt, just write, send a voice note, or tap a button.\n\n"
    "I'm not an emergency service. {crisis_line}"
)
PAUSED_UNTIL = N_(
    "Paused until {until}. Nothing will arrive until then. Type /resume to start again sooner."
)
PAUSED = N_("Paused. Nothing will arrive until you type /resume.")
PAUSE_HOW = N_(
    "To pause for some days, type /pause and a number from 1 to 90, like /pause 3. "
    "Or type /pause on its own to pause until you say /resume."
)
RESUMED = N_("Welcome back. Prompts will start again.")
NOT_PAUSED = N_("You're not paused, so prompts are already on their way as planned.")
STOPPED = N_(
    "Okay, I've stopped. No more prompts will come, and I won't keep anything new you send. "
    "What you shared before stays with your therapist. If you'd like to come back one day, "
    "ask your therapist for a new invite link."
)
STOPPED_ALREADY = N_(
    "You've stopped the prompts, so I'm not keeping new messages. If you'd like to come back, "
    "ask your therapist for a new invite link."
)
UNKNOWN_COMMAND = N_("I don't know that one. Type /help to see what I can do.")
SOMETHING_WENT_WRONG = N_(
    "Sorry, something went wrong on my side and I couldn't take that in just now. "
    "Please try again a little later."
)

# Crisis ---------------------------------------------------------------------------------------
CRISIS_REPLY = N_(
    "I'm really glad you told me. I can't respond to emergencies, and I want you to have "
    "someone with you right now.\n\n{resources}\n\n"
    "I've flagged this for {therapist}, but they may not see it straight away, so please reach "
    "out to one of these now."
)
CRISIS_REPLY_NO_THERAPIST = N_(
    "I'm really glad you told me. I can't respond to emergencies, and I want you to have "
    "someone with you right now.\n\n{resources}"
)
THERAPIST_ALERT = N_(
    "Safety alert: {client} just wrote something that may mean {category}. They were sent the "
    "crisis resources. Please check in with them. (Alert {alert_id})"
)
THERAPIST_CHECKIN_ALERT = N_(
    "Check-in alert: {client}'s check-ins show {pattern}. They were offered a grounding "
    "exercise. Please check in with them. (Alert {alert_id})"
)
THERAPIST_PAIR_HELD = N_(
    "Paired answers held back: {client}'s answer to a paired prompt may mean {category}, so "
    "neither partner was shown the other's answer. Please check in with them. (Alert {alert_id})"
)
THERAPIST_QUESTIONNAIRE_ALERT = N_(
    "Safety alert: {client} answered “{answer}” to item {number} of the {title} (“{item}”). "
    "They were sent the crisis resources. Please check in with them. (Alert {alert_id})"
)
PATTERN_HIGH_ACTIVATION = N_("very high activation twice in a row")
PATTERN_PROLONGED_SHUTDOWN = N_("feeling shut down several days running")
CATEGORY_SUICIDAL = N_("thoughts of suicide")
CATEGORY_SELF_HARM = N_("self-harm")
CATEGORY_DANGER = N_("danger from another person")
CATEGORY_MEDICAL = N_("a medical emergency after a session")

# Therapists ---------------------------------------------------------------------------------
THERAPIST_LINKED = N_(
    "Hello {name}. This Telegram account is now linked to your therapist profile."
)
THERAPIST_LINK_INVALID = N_(
    "This link has expired or has already been used. Ask your practice admin for a new one."
)

# Couples: pairing ------------------------------------------------------------------------------
# Words for partners never take sides, never say who did or did not answer, and never give
# reasons for an ending. Each partner reads them in their own chat.
PAIRING_QUESTION = N_(
    "{therapist} has suggested paired prompts for you and {partner}. Now and then you'll each "
    "get the same question, or two that go together, and answer on your own.\n\n"
    "Your answer stays private until you've both answered. Then each of you sees the other's "
    "answer, but only if its author chose to share it. After every answer you choose: share it "
    "with {partner}, or keep it for you and {therapist}.\n\n"
    "Would you like to take part? If so, which would you like as your usual choice? You can "
    "change it for any answer, and leave paired prompts at any time with /uncouple."
)
PAIRING_YES_SHARE = N_("Yes, usually share mine")
PAIRING_YES_KEEP = N_("Yes, usually keep mine")
PAIRING_NOT_NOW = N_("Not now")
PAIRING_WAITING = N_("Thank you. Paired prompts will start once {partner} has agreed too.")
PAIRING_STARTED = N_(
    "Thank you. You've both agreed, so paired prompts with {partner} will start soon. "
    "Type /uncouple any time to leave them."
)
PAIRING_BOTH_IN = N_(
    "{partner} has agreed too, so paired prompts will start soon. "
    "Type /uncouple any time to leave them."
)
PAIRING_DECLINED = N_(
    "That's completely okay. Nothing changes for your own prompts, and nothing of yours is "
    "passed on to {partner}."
)
PAIRING_NOT_STARTING = N_(
    "Paired prompts with {partner} won't start for now. Nothing changes for your own prompts."
)
PAIRING_CLOSED = N_("This question has closed, so there's nothing to do here.")

# Couples: answers and what each partner sees ----------------------------------------------------
SHARE_QUESTION = N_(
    "Thank you. Once you've both answered, would you like {partner} to see your answer? "
    "If you don't choose, I'll go with your usual choice: {usual}."
)
SHARE_USUAL_SHARE = N_("share it")
SHARE_USUAL_KEEP = N_("keep it for you and your therapist")
SHARE_YES = N_("Share with my partner")
SHARE_NO = N_("Keep for me and my therapist")
SHARE_CHOSEN_YES = N_("Got it. {partner} will see your answer once you've both answered.")
SHARE_CHOSEN_NO = N_("Got it. Your answer stays with you and {therapist}.")
SHARE_SETTLED = N_("This one is already settled, so nothing has changed.")
REVEAL_SHARED = N_("You've both answered. Here's what {partner} shared:\n\n{answer}")
REVEAL_KEPT = N_(
    "You've both answered. {partner} kept their answer for themselves and {therapist} this time."
)
REVEAL_YOURS_SHARED = N_("Your answer went to {partner}.")
REVEAL_YOURS_KEPT = N_("Your answer stays with you and {therapist}.")
REVEAL_HELD = N_(
    "You've both answered. This time, both answers stay with each of you and {therapist}."
)
REVEAL_VOICE_NOTE = N_("(a voice note, which stays with {therapist})")
REVEAL_SHORTENED = N_("(shortened here; {therapist} has all of it)")
PAIR_CLOSED_ONE_ANSWER = N_(
    "This paired prompt has closed before you'd both answered, so nothing was passed on either "
    "way. Your answer is kept for you and {therapist}. Thank you for taking the time."
)
EDITED_AFTER_REVEAL = N_(
    "I've kept your change for {therapist}. {partner} already has the words you shared first, "
    "and I won't send them the change."
)

# Couples: leaving -------------------------------------------------------------------------------
UNCOUPLED = N_(
    "Okay, paired prompts with {partner} have ended. Nothing waiting is passed on, and your own "
    "prompts carry on as before. I'll let {partner} know they've ended, without giving a reason."
)
COUPLE_ENDED = N_(
    "Paired prompts with {partner} have ended for now. Your own prompts carry on as before, "
    "and what you wrote stays with you and {therapist}."
)
NOT_IN_A_COUPLE = N_("You're not doing paired prompts with anyone right now.")
HELP_COUPLE = N_(
    "For you and {partner}:\n"
    "/repair — start a repair exercise, and invite {partner}\n"
    "/uncouple — leave paired prompts"
)

# Couples: the repair exercise -------------------------------------------------------------------
REPAIR_NOT_COUPLED = N_(
    "Repair exercises are for partners who've both agreed to paired prompts. If that's something "
    "you'd like, you could ask your therapist."
)
REPAIR_STARTED = N_(
    "I've invited {partner} to do this exercise too, in their own time. They may not be able to "
    "join this time, and that's okay. Either way, what you write stays private until you've both "
    "finished, and you choose what to share."
)
REPAIR_RESUMED = N_("Welcome back. Here's where you paused:")
REPAIR_DONE = N_("You've finished your side of this exercise. Thank you for taking the time.")
REPAIR_INVITATION = N_(
    "{partner} has started a repair exercise and would like to do it with you. You'd each answer a "
    "few short questions on your own. Answers stay private until you've both finished, and each "
    "of you chooses what to share. \"Not this time\" is a fine answer, and nothing changes if "
    "you choose it."
)
REPAIR_JOIN = N_("I'd like to join")
REPAIR_NOT_THIS_TIME = N_("Not this time")
REPAIR_JOINED = N_("{partner} has joined the repair exercise. Take your time.")
REPAIR_DECLINED = N_(
    "That's completely okay. Nothing from this exercise will be shared with you, and nothing "
    "changes."
)
REPAIR_DECLINED_FOR_STARTER = N_(
    "{partner} can't join this one right now, and that's okay. What you write stays with you and "
    "{therapist}, and you're welcome to finish it for yourself."
)
REPAIR_PAUSE = N_("Pause here")
REPAIR_GROUNDING = N_("A grounding moment")
REPAIR_PAUSED = N_(
    "Okay, we'll pause here. Everything so far is kept. When you're ready, type /repair to "
    "carry on."
)
REPAIR_AFTER_GROUNDING = N_("Whenever you're ready, here's where we were. There's no rush.")
REPAIR_TALK_OFFER = N_(
    "If you'd both like, you could set a time for a 20-minute repair talk. Either of you can "
    "suggest one."
)
REPAIR_TALK_SUGGEST = N_("Suggest a 20-minute talk")
REPAIR_TALK_PICK = N_(
    "Which time would suit you for a 20-minute repair talk? These are your times; {partner} sees "
    "them in theirs."
)
REPAIR_TALK_NO_SLOTS = N_(
    "I couldn't find a time in the next few days outside both your quiet hours. You could agree "
    "on one together."
)
REPAIR_TALK_PROPOSED = N_(
    "{partner} suggests a 20-minute repair talk on {when} (your time). Would that work for you?"
)
REPAIR_TALK_OK = N_("That works for me")
REPAIR_TALK_NO = N_("Not that time")
REPAIR_TALK_SENT = N_("I've asked {partner} whether {when} works for them.")
REPAIR_TALK_SET = N_("Your 20-minute repair talk with {partner} is set for {when} (your time).")
REPAIR_TALK_OTHER_TIME = N_("{partner} can't make that time. Either of you can suggest another.")

# Couples: for therapists ------------------------------------------------------------------------
COUPLE_ASKED = N_(
    "I've asked {first} and {second}, each in their own chat, whether they'd like paired "
    "prompts. Couple {couple_id} starts once both agree."
)
COUPLE_HOW = N_(
    "To link two of your clients as a couple, type /couple and their numbers, like /couple 3 7."
    "\n\nYour clients:\n{clients}"
)
COUPLE_PROBLEM = N_("I couldn't link them: {problem}.")
COUPLE_NO_CLIENTS = N_("(none who have joined yet)")

THERAPIST_HELP = N_(
    "Your practice, from here:\n"
    "/clients: your clients, with status and last reply\n"
    "/client NAME: recent answers and the next prompts\n"
    "/invite NAME: a new client and their invite link\n"
    "/send NAME PROMPT-KEY: send a prompt now\n"
    "/pause NAME [DAYS] and /resume NAME\n"
    "/alerts: open alerts\n"
    "/dashboard: a sign-in link for the web dashboard\n"
    "/digest HH:MM (or off): a daily summary at that time; /digest words on adds a line of "
    "what clients wrote"
)
THERAPIST_NO_CLIENTS = N_("No clients yet. /invite NAME creates one.")
THERAPIST_CLIENTS_HEAD = N_("Your clients ({count}):")
THERAPIST_CLIENT_LINE = N_("{name}: {status}, last reply {last}")
THERAPIST_NEVER = N_("never")
THERAPIST_NAME_NEEDED = N_("Which client? For example: /{command} Sam")
THERAPIST_NOT_FOUND = N_("None of your clients is called “{name}”. /clients lists them.")
THERAPIST_AMBIGUOUS = N_("More than one client matches “{name}”: {names}. Use the number, "
                         "like /{command} #{example}.")
THERAPIST_CLIENT_HEAD = N_("{name}: {status}. Answered {rate} of prompts in the last 14 days.")
THERAPIST_RECENT_HEAD = N_("Recent answers:")
THERAPIST_SCORES_HEAD = N_("Questionnaires:")
THERAPIST_SCORE_LINE = N_(
    "{title}: {total} ({band}) on {when}; baseline {baseline} on {since}, change {change}"
)
THERAPIST_SCORE_FIRST = N_("{title}: {total} ({band}) on {when}, the baseline; no follow-up yet")
THERAPIST_SCORE_RESPONSE = N_("response (at least half lower than baseline)")
THERAPIST_SCORE_REMISSION = N_("remission (under {cutoff})")
THERAPIST_SCORE_INCOMPLETE = N_("{count} left half-done")
THERAPIST_NO_ANSWERS = N_("No answers in the last two weeks.")
THERAPIST_NEXT_HEAD = N_("Next prompts ({zone} time):")
THERAPIST_NOTHING_PLANNED = N_("Nothing planned.")
THERAPIST_INVITED = N_(
    "{name} is invited. Give them this link (it works once, for {hours} hours):\n{link}"
)
THERAPIST_SEND_HOW = N_(
    "Send what? For example: /send Sam checkin.now. The prompt keys are in the dashboard's Library."
)
THERAPIST_SENT = N_("Queued for {name}: {key}. It goes out now, or when their quiet hours end.")
THERAPIST_PAUSED = N_("{name} is paused until {until}. /resume {name} starts prompts again.")
THERAPIST_PAUSED_OPEN = N_("{name} is paused until you resume. /resume {name} starts prompts again.")
THERAPIST_RESUMED = N_("Prompts for {name} start again.")
THERAPIST_NOT_PAUSED = N_("{name} was not paused.")
THERAPIST_REFUSED = N_("That didn't work: {reason}")
THERAPIST_NO_ALERTS = N_("No open alerts.")
THERAPIST_ALERT_LINE = N_("{when}: {name}, {category}")
THERAPIST_ACK = N_("Acknowledge")
THERAPIST_ACKED = N_("Acknowledged.")
THERAPIST_LOGIN_LINK = N_(
    "Your sign-in link for the dashboard. It works once, for {minutes} minutes:\n{url}"
)
THERAPIST_DIGEST_SET = N_("Your daily digest comes at {time} ({zone}).")
THERAPIST_DIGEST_OFF = N_("No daily digest.")
THERAPIST_DIGEST_WORDS = N_("The digest includes a line of what clients wrote: {state}.")
THERAPIST_DIGEST_HOW = N_("Choose a time like /digest 18:30, or /digest off.")
DIGEST_HEAD = N_("Your daily digest")
DIGEST_ANSWERED = N_("Answered in the last day: {names}")
DIGEST_NONE_ANSWERED = N_("Nobody answered in the last day.")
DIGEST_QUIET = N_("Quiet for 3 days or more: {names}")
DIGEST_ALERTS = N_("Open alerts: {items}")
DIGEST_WORDS = N_("What they wrote last:")

# Commands shown in Telegram's menu: (command, description)
CLIENT_COMMANDS = (
    ("help", N_("What I can do")),
    ("pause", N_("Take a break from prompts")),
    ("resume", N_("Start prompts again")),
    ("timezone", N_("Your time zone")),
    ("quiet", N_("Your quiet hours")),
    ("stop", N_("Stop and withdraw consent")),
    ("mydata", N_("A copy of everything I keep about you")),
    ("delete", N_("Erase your answers and details")),
)

# Your data -----------------------------------------------------------------------------------
MYDATA_CAPTION = N_(
    "Here is everything I keep about you, as a file you can open in any text editor or browser."
)
MYDATA_NOTHING = N_("I don't keep anything about you: there is nothing to send.")
DELETE_CONFIRM = N_(
    "This erases your answers, check-ins and details for good, and no more prompts will come. "
    "{therapist} will be told that you erased your data. If you'd like a copy first, tap "
    "\"No, keep it\" and send /mydata.\n\nShall I go ahead?"
)
DELETE_YES = N_("Yes, erase everything")
DELETE_NO = N_("No, keep it")
DELETE_KEPT = N_("Okay, nothing has been erased.")
DELETE_STALE = N_(
    "That button is from an earlier request, so I haven't erased anything. Send /delete again "
    "if you'd like to."
)
DELETE_DONE = N_(
    "Done. I've erased your answers and details. If you'd like to come back one day, your "
    "therapist can send you a new invite. Take good care."
)
THERAPIST_ERASURE_NOTICE = N_(
    "{client} erased their data with /delete. Their answers and details are gone, and no more "
    "prompts will go to them."
)

# Commands shown in a linked therapist's own chat
THERAPIST_COMMANDS = (
    ("clients", N_("Your clients")),
    ("client", N_("One client: recent answers, next prompts")),
    ("invite", N_("Invite a new client")),
    ("send", N_("Send a prompt now")),
    ("pause", N_("Pause a client")),
    ("resume", N_("Resume a client")),
    ("alerts", N_("Open alerts")),
    ("dashboard", N_("Sign-in link for the dashboard")),
    ("digest", N_("Your daily digest")),
    ("help", N_("What you can do here")),
)

# When the next prompt comes ------------------------------------------------------------------
WHEN_TODAY = N_("today at {time}")
WHEN_TOMORROW = N_("tomorrow at {time}")
WHEN_DAY = N_("on {day} at {time}")
