/* Slack mrkdwn -> DOM nodes. Never uses innerHTML: every piece of text is a text node. */
"use strict";

const Mrkdwn = (() => {
  const TOKEN = /<([^<>]*)>/g;
  const PH_OPEN = "\uE000";
  const PH_CLOSE = "\uE001";
  const INLINE = [
    { re: /```([\s\S]+?)```/, tag: "pre" },
    { re: /`([^`\n]+)`/, tag: "code" },
    { re: /(^|[^\w*])\*(?!\s)([^*\n]+?)\*(?![\w*])/, tag: "b", lead: true },
    { re: /(^|[^\w_])_(?!\s)([^_\n]+?)_(?![\w_])/, tag: "i", lead: true },
    { re: /(^|[^\w~])~(?!\s)([^~\n]+?)~(?![\w~])/, tag: "s", lead: true },
  ];

  function decode(text) {
    return text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
  }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function ordinal(n) {
    const s = ["th", "st", "nd", "rd"], v = n % 100;
    return n + (s[(v - 20) % 10] || s[v] || s[0]);
  }

  function parts(date, tz, opts) {
    const out = {};
    for (const p of new Intl.DateTimeFormat("en-US", { timeZone: tz, ...opts }).formatToParts(date)) {
      out[p.type] = p.value;
    }
    return out;
  }

  function dayDiff(date, tz) {
    const key = (d) => {
      const p = parts(d, tz, { year: "numeric", month: "2-digit", day: "2-digit" });
      return Date.UTC(+p.year, +p.month - 1, +p.day);
    };
    return Math.round((key(date) - key(new Date())) / 86400000);
  }

  function formatDate(epoch, format, tz) {
    const date = new Date(epoch * 1000);
    const zone = tz || undefined;
    const p = parts(date, zone, {
      year: "numeric", month: "long", day: "numeric", weekday: "long",
      hour: "numeric", minute: "2-digit", second: "2-digit", hour12: true,
    });
    const short = parts(date, zone, { month: "short" }).month;
    const num = parts(date, zone, { year: "numeric", month: "2-digit", day: "2-digit" });
    const pretty = (fallback) => {
      const diff = dayDiff(date, zone);
      if (diff === 0) return "today";
      if (diff === -1) return "yesterday";
      if (diff === 1) return "tomorrow";
      return fallback;
    };
    const dateStr = `${p.month} ${ordinal(+p.day)}, ${p.year}`;
    const dateShort = `${short} ${+p.day}, ${p.year}`;
    const dateLong = `${p.weekday}, ${dateStr}`;
    const ago = () => {
      const secs = Math.round((Date.now() - date.getTime()) / 1000);
      const abs = Math.abs(secs);
      const [n, unit] = abs < 60 ? [abs, "second"] : abs < 3600 ? [Math.round(abs / 60), "minute"]
        : abs < 86400 ? [Math.round(abs / 3600), "hour"] : [Math.round(abs / 86400), "day"];
      const s = `${n} ${unit}${n === 1 ? "" : "s"}`;
      return secs >= 0 ? `${s} ago` : `in ${s}`;
    };
    const map = {
      date_num: `${num.year}-${num.month}-${num.day}`,
      date: dateStr,
      date_short: dateShort,
      date_long: dateLong,
      date_pretty: pretty(dateStr),
      date_short_pretty: pretty(dateShort),
      date_long_pretty: pretty(dateLong),
      time: `${p.hour}:${p.minute} ${p.dayPeriod}`,
      time_secs: `${p.hour}:${p.minute}:${p.second} ${p.dayPeriod}`,
      ago: ago(),
    };
    return format.replace(/\{(\w+)\}/g, (m, key) => (key in map ? map[key] : m));
  }

  function safeHref(url) {
    return /^(https?:\/\/|mailto:)/i.test(url) ? url : null;
  }

  function renderToken(body, ctx) {
    const [target, rawLabel] = splitOnce(body, "|");
    const label = decode(rawLabel);
    if (target.startsWith("@")) {
      const id = target.slice(1);
      const name = ctx.userName(id) || label || id;
      return el("span", "mention", "@" + name);
    }
    if (target.startsWith("#")) {
      const id = target.slice(1);
      return el("span", "mention", "#" + (label || ctx.channelName(id) || id));
    }
    if (target.startsWith("!subteam^")) {
      const id = target.slice(9);
      const handle = (label || "").replace(/^@/, "") || ctx.groupHandle(id) || id;
      return el("span", "mention", "@" + handle);
    }
    if (target.startsWith("!date^")) {
      const bits = target.split("^");
      const epoch = Number(bits[1]);
      let text = label || "";
      if (Number.isFinite(epoch) && bits[2]) {
        try { text = formatDate(epoch, bits[2], ctx.tz); } catch (e) { /* keep the fallback */ }
      }
      const node = el("time", "date", text);
      if (label) node.title = label;
      return node;
    }
    if (target.startsWith("!")) {
      return el("span", "mention", "@" + target.slice(1).split("^")[0]);
    }
    const href = safeHref(target);
    if (href) {
      const a = el("a", null, label || target);
      a.href = href;
      a.rel = "noopener noreferrer";
      a.target = "_blank";
      return a;
    }
    return document.createTextNode("<" + body + ">");
  }

  function splitOnce(text, sep) {
    const i = text.indexOf(sep);
    return i < 0 ? [text, ""] : [text.slice(0, i), text.slice(i + 1)];
  }

  function emitText(parent, text, tokens, ctx) {
    const re = new RegExp(PH_OPEN + "(\\d+)" + PH_CLOSE, "g");
    let last = 0, m;
    while ((m = re.exec(text))) {
      if (m.index > last) parent.appendChild(document.createTextNode(text.slice(last, m.index)));
      parent.appendChild(renderToken(tokens[+m[1]], ctx));
      last = re.lastIndex;
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
  }

  function inline(parent, text, tokens, ctx) {
    let best = null;
    for (const rule of INLINE) {
      const m = rule.re.exec(text);
      if (m && (!best || m.index < best.m.index)) best = { rule, m };
    }
    if (!best) { emitText(parent, text, tokens, ctx); return; }
    const { rule, m } = best;
    const lead = rule.lead ? m[1] : "";
    const inner = rule.lead ? m[2] : m[1];
    emitText(parent, text.slice(0, m.index) + lead, tokens, ctx);
    const node = el(rule.tag);
    if (rule.tag === "pre" || rule.tag === "code") emitText(node, inner, tokens, ctx);
    else inline(node, inner, tokens, ctx);
    parent.appendChild(node);
    inline(parent, text.slice(m.index + m[0].length), tokens, ctx);
  }

  /* Render Slack mrkdwn `text` into a fragment. ctx: {userName(id), channelName(id), groupHandle(id), tz} */
  function render(text, ctx) {
    const frag = document.createDocumentFragment();
    const tokens = [];
    const replaced = String(text || "").replace(TOKEN, (m, body) => {
      tokens.push(body);
      return PH_OPEN + (tokens.length - 1) + PH_CLOSE;
    });
    const plain = decode(replaced);
    const lines = plain.split("\n");
    lines.forEach((line, i) => {
      if (line.startsWith("> ") || line === ">") {
        const quote = el("blockquote");
        inline(quote, line.slice(2), tokens, ctx);
        frag.appendChild(quote);
        return;
      }
      inline(frag, line, tokens, ctx);
      if (i < lines.length - 1) frag.appendChild(document.createTextNode("\n"));
    });
    return frag;
  }

  return { render, formatDate, el, safeHref };
})();
