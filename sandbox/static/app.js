/* The sandbox page: polls /_sandbox/ui/state every second and renders the workspace. */
"use strict";

(() => {
  const el = Mrkdwn.el;
  const $ = (id) => document.getElementById(id);
  const prefs = {
    user: localStorage.getItem("sandbox.user") || "U0LEAD001",
    channel: localStorage.getItem("sandbox.channel") || "C0OPS0001",
    showDm: false,
    showHome: false,
    highlight: null,
  };
  let state = null;
  let lastJson = "";
  let modalKey = "";
  let modalErrors = {};

  // permalinks arrive as /#CHANNEL/pTS
  const hash = location.hash.slice(1);
  if (hash === "dm") prefs.showDm = true;
  else if (hash === "home") prefs.showHome = true;
  else if (hash) {
    const [ch, p] = hash.split("/");
    prefs.channel = ch;
    if (p && /^p\d+$/.test(p)) prefs.highlight = p.slice(1, -6) + "." + p.slice(-6);
  }

  function ctx() {
    const users = new Map((state ? state.users : []).map((u) => [u.id, u]));
    const me = users.get(prefs.user);
    return {
      userName: (id) => (users.get(id) || {}).real_name,
      channelName: (id) => ((state ? state.channels : []).find((c) => c.id === id) || {}).name,
      groupHandle: (id) => (state ? state.usergroups[id] : undefined),
      humans: () => (state ? state.users.filter((u) => !u.is_bot) : []),
      tz: me ? me.tz : undefined,
    };
  }

  function setStatus(text, isError) {
    const s = $("status");
    s.textContent = text || "";
    s.style.color = isError ? "#e01e5a" : "";
  }

  async function post(path, body) {
    try {
      const res = await fetch("/_sandbox/ui/" + path, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      const data = await res.json();
      if (!res.ok || data.ok === false) setStatus(data.error || data.summary || "failed", true);
      else setStatus(data.summary || "");
      await refresh(true);
      return data;
    } catch (e) {
      setStatus(String(e), true);
      return { ok: false, error: String(e) };
    }
  }

  async function refresh(force) {
    const q = new URLSearchParams({ user: prefs.user, channel: prefs.channel });
    let data;
    try {
      const res = await fetch("/_sandbox/ui/state?" + q.toString());
      data = await res.json();
    } catch (e) {
      setStatus("sandbox unreachable: " + e, true);
      return;
    }
    const json = JSON.stringify(data);
    if (!force && json === lastJson) return;
    lastJson = json;
    state = data;
    prefs.user = data.user;
    if (data.channel) prefs.channel = data.channel.id;
    render();
  }

  function render() {
    $("team").textContent = state.team.name;
    renderWho();
    renderChannels();
    renderMain();
    renderModal();
  }

  function renderWho() {
    const who = $("who");
    if (who.dataset.key !== state.users.map((u) => u.id).join()) {
      who.replaceChildren();
      for (const u of state.users) {
        if (u.is_bot) continue;
        const opt = el("option", null, u.real_name + " (@" + u.name + ")");
        opt.value = u.id;
        who.appendChild(opt);
      }
      who.dataset.key = state.users.map((u) => u.id).join();
    }
    who.value = prefs.user;
    const me = state.users.find((u) => u.id === prefs.user);
    $("who-tz").textContent = me ? "time zone: " + me.tz : "";
    $("bot-status").textContent = state.bot_connected ? "bot connected" : "no bot URL set";
  }

  function renderChannels() {
    const list = $("channels");
    list.replaceChildren();
    for (const c of state.channels) {
      const li = el("li");
      const a = el("a", null, (c.is_private ? "🔒 " : "# ") + c.name + (c.is_archived ? " (archived)" : ""));
      a.href = "#" + c.id;
      if (!c.is_member) a.classList.add("not-member");
      if (!prefs.showDm && !prefs.showHome && state.channel && c.id === state.channel.id) a.classList.add("active");
      a.addEventListener("click", (ev) => {
        ev.preventDefault();
        prefs.channel = c.id;
        prefs.showDm = false;
        prefs.showHome = false;
        localStorage.setItem("sandbox.channel", c.id);
        history.replaceState(null, "", "#" + c.id);
        refresh(true);
      });
      li.appendChild(a);
      list.appendChild(li);
    }
    $("dm-link").classList.toggle("active", prefs.showDm);
    $("home-link").classList.toggle("active", prefs.showHome);
  }

  function authorOf(m) {
    if (m.bot_id || m.user === state.bot_user_id) return "Safeguard";
    const u = state.users.find((x) => x.id === m.user);
    return u ? u.real_name : m.user || "?";
  }

  function renderMessage(m, channelId) {
    const c = ctx();
    const box = el("div", "msg");
    if (m.ephemeral) box.classList.add("ephemeral");
    if (m.subtype && m.subtype.startsWith("channel_")) box.classList.add("system");
    if (prefs.highlight === m.ts) box.classList.add("highlight");
    const meta = el("div", "meta");
    meta.appendChild(el("b", null, authorOf(m)));
    if (m.bot_id) meta.appendChild(el("span", "tag", "APP"));
    if (m.ephemeral) meta.appendChild(el("span", "tag", "Only visible to you"));
    if (state.channel && state.channel.pins.includes(m.ts) && !prefs.showDm) meta.appendChild(el("span", "tag", "📌 pinned"));
    if (m.thread_ts && m.thread_ts !== m.ts) meta.appendChild(el("span", "tag", "in thread"));
    const when = el("time", null, Mrkdwn.formatDate(Math.floor(Number(m.ts)), "{date_short_pretty} {time_secs}", c.tz));
    meta.appendChild(when);
    if (m.edited) meta.appendChild(el("span", "muted", " (edited)"));
    box.appendChild(meta);
    const onAction = (a) => post("click", { user: prefs.user, channel: channelId, ts: m.ts, ...a });
    if (m.blocks && m.blocks.length) box.appendChild(Blocks.render(m.blocks, c, onAction));
    else {
      const t = el("div", "txt");
      t.style.whiteSpace = "pre-wrap";
      t.appendChild(Mrkdwn.render(m.text, c));
      box.appendChild(t);
    }
    if (m.files && m.files.length) {
      const f = el("div", "files");
      for (const file of m.files) f.appendChild(el("div", null, "📎 " + (file.title || file.name) + " (" + file.name + ")"));
      box.appendChild(f);
    }
    if (m.reactions && m.reactions.length) {
      const r = el("div", "reactions");
      for (const x of m.reactions) r.appendChild(el("span", null, ":" + x.name + ": " + x.count));
      box.appendChild(r);
    }
    return box;
  }

  function renderMain() {
    const msgs = $("messages");
    const atBottom = msgs.scrollHeight - msgs.scrollTop - msgs.clientHeight < 40;
    msgs.replaceChildren();
    if (prefs.showHome) {
      $("channel-title").textContent = "Safeguard (Home)";
      $("channel-topic").textContent = "The app's Home tab: published by the bot when you open it";
      $("channel-extra").textContent = "";
      const home = state.home;
      if (home) {
        const onAction = (a) => post("click_home", { user: prefs.user, ...a });
        msgs.appendChild(Blocks.render(home.blocks, ctx(), onAction));
      } else msgs.appendChild(el("p", "muted", "The bot has not published a Home tab for you yet."));
    } else if (prefs.showDm) {
      $("channel-title").textContent = "Safeguard (direct messages)";
      $("channel-topic").textContent = "Messages the bot sent you";
      $("channel-extra").textContent = "";
      for (const m of state.dms) msgs.appendChild(renderMessage(m, state.dm_channel));
      if (!state.dms.length) msgs.appendChild(el("p", "muted", "No direct messages yet."));
    } else if (state.channel) {
      const ch = state.channel;
      $("channel-title").textContent = (ch.is_private ? "🔒 " : "#") + ch.name + (ch.is_archived ? " (archived)" : "");
      $("channel-topic").replaceChildren(Mrkdwn.render(ch.topic || ch.purpose || "", ctx()));
      const names = ch.members.map((id) => (state.users.find((u) => u.id === id) || { name: id }).name);
      $("channel-extra").textContent = ch.members.length + " members: " + names.join(", ") +
        (ch.bookmarks.length ? " · bookmarks: " + ch.bookmarks.map((b) => b.title).join(", ") : "") +
        (ch.is_member ? "" : " · you are not a member");
      for (const m of state.messages) msgs.appendChild(renderMessage(m, ch.id));
    }
    if (prefs.highlight) {
      const hl = msgs.querySelector(".highlight");
      if (hl) { hl.scrollIntoView(); prefs.highlight = null; return; }
    }
    if (atBottom) msgs.scrollTop = msgs.scrollHeight;
  }

  function renderModal() {
    const layer = $("modal-layer");
    const views = state.views || [];
    const top = views[views.length - 1];
    const key = top ? top.id + ":" + top.hash + ":" + JSON.stringify(modalErrors) : "";
    if (key === modalKey) return;
    modalKey = key;
    layer.replaceChildren();
    if (!top) { layer.hidden = true; modalErrors = {}; return; }
    layer.hidden = false;
    const c = ctx();
    const box = el("div", "modal");
    box.setAttribute("role", "dialog");
    box.setAttribute("aria-modal", "true");
    box.appendChild(el("h3", null, Blocks.plainText(top.title)));
    if (views.length > 1) box.appendChild(el("div", "stack", "modal " + views.length + " of " + views.length));
    const inputs = [];
    const onAction = (a) => post("click_view", { user: prefs.user, view_id: top.id, ...a });
    box.appendChild(Blocks.render(top.blocks, c, onAction, (block) => {
      const node = Blocks.input(block, c, modalErrors[block.block_id], (top.state || {}).values);
      inputs.push(node);
      return node;
    }));
    const buttons = el("div", "buttons");
    const close = el("button", "bk", Blocks.plainText(top.close) || "Cancel");
    close.type = "button";
    close.addEventListener("click", () => { modalErrors = {}; post("close", { user: prefs.user, view_id: top.id }); });
    buttons.appendChild(close);
    if (top.submit) {
      const submit = el("button", "bk primary", Blocks.plainText(top.submit));
      submit.type = "button";
      submit.addEventListener("click", async () => {
        const values = {};
        for (const node of inputs) {
          const v = node.read();
          if (v.value === null || v.value === "" || (Array.isArray(v.value) && !v.value.length)) continue;
          (values[v.block_id] = values[v.block_id] || {})[v.action_id] = v.value;
        }
        submit.disabled = true;
        const res = await post("submit", { user: prefs.user, view_id: top.id, values });
        submit.disabled = false;
        modalErrors = (res && res.errors) || {};
        modalKey = "";
        renderModal();
      });
      buttons.appendChild(submit);
    }
    box.appendChild(buttons);
    layer.appendChild(box);
  }

  $("who").addEventListener("change", (ev) => {
    prefs.user = ev.target.value;
    localStorage.setItem("sandbox.user", prefs.user);
    modalKey = "";
    modalErrors = {};
    refresh(true);
  });
  $("home-link").addEventListener("click", (ev) => {
    ev.preventDefault();
    prefs.showHome = true;
    prefs.showDm = false;
    history.replaceState(null, "", "#home");
    post("home", { user: prefs.user });  // opening the tab sends app_home_opened, as Slack does
  });
  $("dm-link").addEventListener("click", (ev) => {
    ev.preventDefault();
    prefs.showHome = false;
    prefs.showDm = true;
    history.replaceState(null, "", "#dm");
    refresh(true);
  });
  $("composer").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = $("compose-text");
    const text = input.value.trim();
    if (!text || !state || (!state.channel && !prefs.showDm && !prefs.showHome)) return;
    const channel = prefs.showDm || prefs.showHome ? (state.dm_channel || prefs.user) : state.channel.id;
    input.value = "";
    if (text.startsWith("/")) await post("command", { user: prefs.user, channel, text });
    else await post("post", { user: prefs.user, channel, text });
  });

  refresh(true);
  setInterval(() => refresh(false), 1000);
})();
