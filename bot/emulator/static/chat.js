// The demo chat page: plays one person at a time against the emulator's control API
// and long-polls that person's chat, so the bot's answers appear as they are sent.
"use strict";

(function () {
  const WAIT_SECONDS = 20;        // how long one long poll waits on the server
  const RETRY_MS = 700;           // pause after a failed poll before trying again
  const TYPING_MS = 5000;         // Telegram shows "typing…" for about five seconds
  const PEOPLE_REFRESH_MS = 5000;
  const STORAGE_KEY = "interlude-demo-person";

  const $ = (id) => document.getElementById(id);
  const state = {
    people: [],
    personId: null,
    version: null,
    replyTo: null,
    answersSeen: 0,
    rendered: new Map(), // message_id -> {signature, node}, so only changes are redrawn
    poll: null,        // AbortController of the running long poll
    typingTimer: null,
    username: "InterludeDemoBot",
  };

  // -- talking to the emulator ------------------------------------------------

  async function api(path, options = {}) {
    const response = await fetch(path, {
      headers: { "Content-Type": "application/json" },
      ...options,
    });
    let body = null;
    try { body = await response.json(); } catch (_) { /* an empty answer */ }
    if (!response.ok) {
      const error = new Error((body && body.error) || "Something went wrong.");
      error.status = response.status;
      throw error;
    }
    return body;
  }

  const post = (path, body) => api(path, { method: "POST", body: JSON.stringify(body || {}) });

  // -- people -----------------------------------------------------------------

  async function loadPeople() {
    const people = await api("/emulator/users");
    // Redraw only on a change, so the periodic refresh never steals keyboard focus.
    if (JSON.stringify(people) === JSON.stringify(state.people)) return;
    state.people = people;
    renderPeople();
  }

  function renderPeople() {
    const list = $("people-list");
    list.replaceChildren();
    $("people-empty").hidden = state.people.length > 0;
    for (const person of state.people) {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = person.first_name;
      if (person.blocked) {
        const note = document.createElement("span");
        note.className = "state";
        note.textContent = " · blocked the bot";
        button.append(note);
      }
      button.setAttribute("aria-current", String(person.id === state.personId));
      button.addEventListener("click", () => choosePerson(person.id));
      item.append(button);
      list.append(item);
    }
  }

  function currentPerson() {
    return state.people.find((person) => person.id === state.personId) || null;
  }

  // `remember`: open this person next time too (not when the page's address chose them, so two
  // chat frames side by side on the demo page each keep their own person).
  function choosePerson(personId, remember = true) {
    state.personId = personId;
    state.version = null;
    state.replyTo = null;
    state.answersSeen = -1;
    if (remember) localStorage.setItem(STORAGE_KEY, String(personId));
    const person = currentPerson();
    $("chat-title").textContent = person ? `Chatting as ${person.first_name}` : "Chat";
    $("chat-subtitle").textContent = "Messages go to the bot as if sent from Telegram.";
    for (const id of ["composer", "invite-form", "block-button"]) $(id).hidden = false;
    $("messages").replaceChildren();
    state.rendered.clear();
    renderPeople();
    renderReplying();
    startPolling();
    if (remember) $("composer-text").focus();  // a frame chosen by address leaves focus alone
  }

  // The person is gone (the emulator was reset): back to choosing one.
  function forgetPerson() {
    state.personId = null;
    localStorage.removeItem(STORAGE_KEY);
    $("chat-title").textContent = "Choose or add a person";
    $("chat-subtitle").textContent = "You will chat with the bot as that person.";
    for (const id of ["composer", "invite-form", "block-button", "quick-replies"]) $(id).hidden = true;
    $("messages").replaceChildren();
    state.rendered.clear();
  }

  $("person-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = $("person-name").value.trim();
    if (!name) return;
    try {
      const created = await post("/emulator/users", {
        first_name: name,
        language_code: $("person-language").value,
      });
      $("person-name").value = "";
      await loadPeople();
      choosePerson(created.id);
    } catch (error) {
      notify(error.message);
    }
  });

  // -- the transcript -----------------------------------------------------------

  function startPolling() {
    if (state.poll) state.poll.abort();
    const controller = new AbortController();
    state.poll = controller;
    const personId = state.personId;
    (async () => {
      while (!controller.signal.aborted && personId === state.personId) {
        const query = state.version === null ? "" : `?version=${state.version}&timeout=${WAIT_SECONDS}`;
        try {
          const chat = await api(`/emulator/chats/${personId}${query}`, { signal: controller.signal });
          if (controller.signal.aborted) return;
          if (chat.version !== state.version) {
            state.version = chat.version;
            renderChat(chat);
          }
        } catch (error) {
          if (controller.signal.aborted) return;
          await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
          if (error.status === 404) { forgetPerson(); await loadPeople(); return; }
        }
      }
    })();
  }

  function renderChat(chat) {
    const box = $("messages");
    const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    renderMessages(box, chat.messages);
    if (nearBottom || state.answersSeen === -1) box.scrollTop = box.scrollHeight;

    const blocked = Boolean(chat.blocked);
    const blockButton = $("block-button");
    blockButton.textContent = blocked ? "Unblock the bot" : "Block the bot";
    blockButton.setAttribute("aria-pressed", String(blocked));
    const person = currentPerson();
    if (person && person.blocked !== blocked) { person.blocked = blocked; renderPeople(); }

    renderTyping(chat.action);
    renderQuickReplies(chat.keyboard);

    const answers = chat.callback_answers || [];
    if (state.answersSeen >= 0 && answers.length > state.answersSeen) {
      const latest = answers[answers.length - 1];
      if (latest.text) notify(latest.text, latest.show_alert);
    }
    state.answersSeen = answers.length;
  }

  // Only new and changed messages touch the page, so a screen reader announces
  // each arrival once instead of the whole conversation again.
  function renderMessages(box, messages) {
    const present = new Set();
    for (const message of messages) {
      const key = message.message_id;
      present.add(key);
      const signature = JSON.stringify([message.text, message.entities, message.edit_date, message.reply_markup]);
      const known = state.rendered.get(key);
      if (known && known.signature === signature) continue;
      const node = renderMessage(message);
      if (known) known.node.replaceWith(node);
      else box.append(node);
      state.rendered.set(key, { signature, node });
    }
    for (const [key, known] of state.rendered) {
      if (!present.has(key)) { known.node.remove(); state.rendered.delete(key); }
    }
  }

  function renderMessage(message) {
    const fromBot = message.from && message.from.is_bot;
    const wrapper = document.createElement("article");
    wrapper.className = `message ${fromBot ? "from-bot" : "from-me"}`;
    wrapper.setAttribute("aria-label", fromBot ? "From Interlude" : "From you");

    const bubble = document.createElement("div");
    bubble.className = "bubble";
    if (message.reply_to_message) {
      const quote = document.createElement("div");
      quote.className = "quote";
      const quoted = message.reply_to_message;
      const who = quoted.from && quoted.from.is_bot ? "Interlude" : "You";
      quote.textContent = `${who}: ${summary(quoted)}`;
      bubble.append(quote);
    }
    bubble.append(renderContent(message));
    wrapper.append(bubble);

    const keyboard = message.reply_markup && message.reply_markup.inline_keyboard;
    if (keyboard && keyboard.length) wrapper.append(renderKeyboard(message, keyboard));

    const meta = document.createElement("div");
    meta.className = "meta";
    const time = document.createElement("time");
    const when = new Date(message.date * 1000);
    time.dateTime = when.toISOString();
    time.textContent = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    meta.append(time);
    if (message.edit_date) {
      const edited = document.createElement("span");
      edited.textContent = "edited";
      meta.append(edited);
    }
    const reply = document.createElement("button");
    reply.type = "button";
    reply.className = "quiet";
    reply.textContent = "Reply";
    reply.setAttribute("aria-label", `Reply to: ${summary(message)}`);
    reply.addEventListener("click", () => {
      state.replyTo = message;
      renderReplying();
      $("composer-text").focus();
    });
    meta.append(reply);
    wrapper.append(meta);
    return wrapper;
  }

  function summary(message) {
    if (message.text) return message.text.length > 80 ? `${message.text.slice(0, 80)}…` : message.text;
    if (message.voice) return "Voice note";
    if (message.photo) return "Photo";
    if (message.sticker) return "Sticker";
    if (message.location) return "Location";
    return "Message";
  }

  function renderContent(message) {
    if (message.text !== undefined) return renderRich(message.text, message.entities);
    const fragment = document.createDocumentFragment();
    if (message.voice) {
      const seconds = message.voice.duration || 0;
      const minutes = Math.floor(seconds / 60);
      fragment.append(`🎤 Voice note, ${minutes}:${String(seconds % 60).padStart(2, "0")}`);
    } else if (message.photo) {
      fragment.append("🖼 Photo");
    } else if (message.sticker) {
      fragment.append(message.sticker.emoji || "Sticker");
    } else if (message.location) {
      fragment.append(`📍 Location ${message.location.latitude}, ${message.location.longitude}`);
    } else {
      fragment.append("A message this page cannot show");
    }
    if (message.caption) fragment.append(document.createElement("br"), message.caption);
    return fragment;
  }

  // Telegram's entities count UTF-16 code units, as JavaScript strings do.
  function renderRich(text, entities) {
    const sorted = [...(entities || [])].sort((a, b) => a.offset - b.offset || b.length - a.length);
    function build(start, end, list) {
      const fragment = document.createDocumentFragment();
      let position = start;
      let index = 0;
      while (index < list.length) {
        const entity = list[index];
        if (entity.offset < position) { index += 1; continue; }
        if (entity.offset > position) fragment.append(text.slice(position, entity.offset));
        const entityEnd = Math.min(entity.offset + entity.length, end);
        const inner = [];
        let next = index + 1;
        while (next < list.length && list[next].offset < entityEnd) { inner.push(list[next]); next += 1; }
        const element = elementFor(entity);
        element.append(build(entity.offset, entityEnd, inner));
        fragment.append(element);
        position = entityEnd;
        index = next;
      }
      if (position < end) fragment.append(text.slice(position, end));
      return fragment;
    }
    return build(0, text.length, sorted);
  }

  function elementFor(entity) {
    const tags = {
      bold: "strong", italic: "em", underline: "u", strikethrough: "s",
      code: "code", pre: "pre", blockquote: "blockquote", expandable_blockquote: "blockquote",
    };
    if (entity.type === "text_link" && /^(https?|tg):/i.test(entity.url || "")) {
      const link = document.createElement("a");
      link.href = entity.url;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      return link;
    }
    if (entity.type === "spoiler") {
      const spoiler = document.createElement("span");
      spoiler.className = "spoiler";
      spoiler.tabIndex = 0;
      spoiler.setAttribute("role", "button");
      spoiler.setAttribute("aria-label", "Hidden text, press to show");
      const show = () => spoiler.classList.add("shown");
      spoiler.addEventListener("click", show);
      spoiler.addEventListener("keydown", (event) => { if (event.key === "Enter" || event.key === " ") show(); });
      return spoiler;
    }
    return document.createElement(tags[entity.type] || "span");
  }

  function renderKeyboard(message, rows) {
    const keyboard = document.createElement("div");
    keyboard.className = "keyboard";
    keyboard.setAttribute("role", "group");
    keyboard.setAttribute("aria-label", "Answer buttons");
    for (const row of rows) {
      const line = document.createElement("div");
      line.className = "kb-row";
      for (const button of row) {
        if (button.url) {
          const link = document.createElement("a");
          link.textContent = button.text;
          if (/^(https?|tg):/i.test(button.url)) link.href = button.url;
          link.target = "_blank";
          link.rel = "noopener noreferrer";
          line.append(link);
          continue;
        }
        const press = document.createElement("button");
        press.type = "button";
        press.textContent = button.text;
        if (button.callback_data === undefined) {
          press.disabled = true;
        } else {
          press.addEventListener("click", () => pressButton(message.message_id, button.callback_data));
        }
        line.append(press);
      }
      keyboard.append(line);
    }
    return keyboard;
  }

  async function pressButton(messageId, callbackData) {
    try {
      await post(`/emulator/users/${state.personId}/press`, {
        message_id: messageId,
        callback_data: callbackData,
      });
    } catch (error) {
      notify(error.message);
    }
  }

  function renderTyping(action) {
    clearTimeout(state.typingTimer);
    $("typing").textContent = action === "typing" ? "Interlude is typing…" : "";
    if (action) state.typingTimer = setTimeout(() => { $("typing").textContent = ""; }, TYPING_MS);
  }

  function renderQuickReplies(rows) {
    const box = $("quick-replies");
    box.replaceChildren();
    box.hidden = !rows || rows.length === 0;
    if (box.hidden) return;
    for (const text of rows.flat()) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = text;
      button.addEventListener("click", () => sendText(text));
      box.append(button);
    }
  }

  // -- writing ------------------------------------------------------------------

  function renderReplying() {
    const box = $("replying");
    box.hidden = !state.replyTo;
    if (state.replyTo) $("replying-text").textContent = `Replying to: ${summary(state.replyTo)}`;
  }

  $("replying-cancel").addEventListener("click", () => {
    state.replyTo = null;
    renderReplying();
    $("composer-text").focus();
  });

  async function send(payload) {
    if (state.personId === null) return false;
    if (state.replyTo) payload.reply_to_message_id = state.replyTo.message_id;
    try {
      await post(`/emulator/users/${state.personId}/messages`, payload);
      state.replyTo = null;
      renderReplying();
      return true;
    } catch (error) {
      notify(error.status === 409 ? "You have blocked the bot. Unblock it to write again." : error.message);
      return false;
    }
  }

  async function sendText(text) {
    const trimmed = text.trim();
    if (!trimmed) return false;
    return send({ text: trimmed });
  }

  $("composer").addEventListener("submit", async (event) => {
    event.preventDefault();
    const box = $("composer-text");
    if (await sendText(box.value)) box.value = "";
    box.focus();
  });

  $("composer-text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });

  $("voice-button").addEventListener("click", () => {
    const seconds = Math.max(1, Math.min(600, parseInt($("voice-seconds").value, 10) || 5));
    send({ voice: { duration: seconds } });
  });

  // A t.me link ("https://t.me/<bot>?start=<code>") or the bare code.
  function inviteCode(input) {
    const value = input.trim();
    const fromLink = value.match(/[?&]start=([A-Za-z0-9_-]{1,64})/);
    if (fromLink) return fromLink[1];
    if (/^[A-Za-z0-9_-]{1,64}$/.test(value)) return value;
    return null;
  }

  $("invite-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const code = inviteCode($("invite-link").value);
    if (!code) {
      notify("That does not look like an invite link. Paste the whole link, or the code after “start=”.");
      return;
    }
    if (await send({ text: `/start ${code}` })) $("invite-link").value = "";
  });

  $("block-button").addEventListener("click", async () => {
    const blocked = $("block-button").getAttribute("aria-pressed") === "true";
    try {
      await post(`/emulator/users/${state.personId}/${blocked ? "unblock" : "block"}`);
      await loadPeople();
    } catch (error) {
      notify(error.message);
    }
  });

  // -- notices ------------------------------------------------------------------

  let noticeTimer = null;
  function notify(text, stay) {
    $("notice-text").textContent = text;
    $("notice").hidden = false;
    clearTimeout(noticeTimer);
    if (!stay) noticeTimer = setTimeout(() => { $("notice").hidden = true; }, 6000);
    else $("notice-close").focus();
  }
  $("notice-close").addEventListener("click", () => { $("notice").hidden = true; });

  // -- start ----------------------------------------------------------------------

  async function start() {
    try {
      const config = await api("/emulator/config");
      state.username = config.username;
      $("invite-link").placeholder = `https://t.me/${config.username}?start=…`;
      await loadPeople();
    } catch (error) {
      notify("The emulator is not answering. Is it still running?", true);
      return;
    }
    // ?start=CODE in the page's own address opens that invite for the chosen person.
    const code = new URLSearchParams(location.search).get("start");
    // ?as=ID chats as that person (the demo page's frames for each partner of a couple).
    const chosen = Number(new URLSearchParams(location.search).get("as"));
    const remembered = Number(localStorage.getItem(STORAGE_KEY));
    if (state.people.some((person) => person.id === chosen)) {
      document.body.classList.add("pinned");
      choosePerson(chosen, false);
    } else if (state.people.some((person) => person.id === remembered)) choosePerson(remembered);
    if (code) {
      $("invite-link").value = code;
      if (state.personId === null) $("person-name").focus();
    }
  }

  start();
  // People may also be added by tests or another tab; keep the list current.
  setInterval(() => { loadPeople().catch(() => {}); }, PEOPLE_REFRESH_MS);
})();
