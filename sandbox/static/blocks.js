/* Block Kit -> DOM for messages and modals. Text only ever lands in text nodes. */
"use strict";

const Blocks = (() => {
  const el = Mrkdwn.el;

  function text(obj, ctx) {
    if (!obj) return document.createDocumentFragment();
    if (typeof obj === "string") return Mrkdwn.render(obj, ctx);
    if (obj.type === "mrkdwn") return Mrkdwn.render(obj.text, ctx);
    return document.createTextNode(String(obj.text || ""));
  }

  function plainText(obj) {
    return obj && typeof obj === "object" ? String(obj.text || "") : String(obj || "");
  }

  function options(element) {
    const out = [...(element.options || [])];
    for (const g of element.option_groups || []) out.push(...(g.options || []));
    return out;
  }

  /* An interactive element in a message or in an actions block of a modal. */
  function element(block, elem, ctx, onAction) {
    const act = (value) => onAction({ block_id: block.block_id, action_id: elem.action_id, value });
    switch (elem.type) {
      case "button": {
        const b = el("button", "bk" + (elem.style ? " " + elem.style : ""), plainText(elem.text));
        b.type = "button";
        b.addEventListener("click", () => {
          const href = elem.url && Mrkdwn.safeHref(elem.url);
          // Slack's link to a channel (app_redirect) opens that channel of this sandbox.
          const redirect = elem.url && /^https:\/\/slack\.com\/app_redirect\?(.*)$/.exec(elem.url);
          const channel = redirect && new URLSearchParams(redirect[1]).get("channel");
          if (channel && /^[CGD][A-Z0-9]+$/.test(channel)) {
            localStorage.setItem("sandbox.channel", channel);
            window.location.hash = channel;
            window.location.reload();
          } else if (href) window.open(href, "_blank", "noopener");
          b.disabled = true;
          Promise.resolve(act(elem.value === undefined ? null : elem.value)).finally(() => { b.disabled = false; });
        });
        return b;
      }
      case "static_select":
      case "overflow":
      case "radio_buttons": {
        const sel = el("select");
        sel.appendChild(el("option", null, plainText(elem.placeholder) || (elem.type === "overflow" ? "…" : "Select")));
        sel.firstChild.value = "";
        for (const o of options(elem)) {
          const opt = el("option", null, plainText(o.text));
          opt.value = o.value;
          sel.appendChild(opt);
        }
        sel.addEventListener("change", () => { if (sel.value) act(sel.value); });
        return sel;
      }
      case "users_select": {
        const sel = el("select");
        sel.appendChild(el("option", null, plainText(elem.placeholder) || "Select a person"));
        sel.firstChild.value = "";
        for (const u of ctx.humans()) {
          const opt = el("option", null, u.real_name + " (@" + u.name + ")");
          opt.value = u.id;
          sel.appendChild(opt);
        }
        sel.addEventListener("change", () => { if (sel.value) act(sel.value); });
        return sel;
      }
      case "image":
        return el("span", "muted", "[image: " + (elem.alt_text || "") + "]");
      default:
        return el("span", "blk-unknown", "[" + elem.type + "]");
    }
  }

  function contextElement(elem, ctx) {
    if (elem.type === "image") return el("span", null, "[" + (elem.alt_text || "image") + "]");
    const span = el("span");
    span.appendChild(text(elem, ctx));
    return span;
  }

  /* Render display blocks. onAction({block_id, action_id, value}) handles interactions;
     inputRenderer(block) renders input blocks (modals). */
  function render(blocks, ctx, onAction, inputRenderer) {
    const frag = document.createDocumentFragment();
    for (const block of blocks || []) {
      switch (block.type) {
        case "header":
          frag.appendChild(el("div", "blk-header", plainText(block.text)));
          break;
        case "section": {
          const wrap = el("div", "blk-section");
          const body = el("div", "txt");
          if (block.text) body.appendChild(text(block.text, ctx));
          if (block.fields) {
            const grid = el("div", "blk-fields");
            for (const f of block.fields) {
              const cell = el("div");
              cell.appendChild(text(f, ctx));
              grid.appendChild(cell);
            }
            body.appendChild(grid);
          }
          wrap.appendChild(body);
          if (block.accessory) wrap.appendChild(element(block, block.accessory, ctx, onAction));
          frag.appendChild(wrap);
          break;
        }
        case "context": {
          const wrap = el("div", "blk-context");
          for (const e of block.elements || []) wrap.appendChild(contextElement(e, ctx));
          frag.appendChild(wrap);
          break;
        }
        case "divider":
          frag.appendChild(el("hr", "blk-divider"));
          break;
        case "actions": {
          const wrap = el("div", "blk-actions");
          for (const e of block.elements || []) wrap.appendChild(element(block, e, ctx, onAction));
          frag.appendChild(wrap);
          break;
        }
        case "input":
          if (inputRenderer) frag.appendChild(inputRenderer(block));
          else frag.appendChild(el("div", "blk-unknown", "[input: " + plainText(block.label) + "]"));
          break;
        case "image":
          frag.appendChild(el("div", "muted", "[image: " + (block.alt_text || "") + "]"));
          break;
        case "rich_text":
        case "markdown":
          frag.appendChild(el("div", "txt", block.text || "[" + block.type + "]"));
          break;
        default:
          frag.appendChild(el("div", "blk-unknown", "[" + block.type + " block]"));
      }
    }
    return frag;
  }

  /* One input block of a modal: returns the node; `read()` on it gives the raw value. */
  function input(block, ctx, error, state) {
    const wrap = el("div", "input-block");
    const elem = block.element || {};
    const id = "in-" + block.block_id + "-" + elem.action_id;
    const label = el("label", "lbl", plainText(block.label) + (block.optional ? " (optional)" : ""));
    label.htmlFor = id;
    wrap.appendChild(label);
    const current = ((state || {})[block.block_id] || {})[elem.action_id] || {};
    let control;
    let read;
    switch (elem.type) {
      case "plain_text_input":
      case "email_text_input":
      case "url_text_input":
      case "number_input": {
        control = elem.multiline ? el("textarea") : el("input");
        if (!elem.multiline) control.type = elem.type === "number_input" ? "number" : "text";
        control.value = current.value ?? elem.initial_value ?? "";
        if (elem.placeholder) control.placeholder = plainText(elem.placeholder);
        if (elem.max_length) control.maxLength = elem.max_length;
        read = () => control.value;
        break;
      }
      case "static_select":
      case "radio_buttons": {
        control = el("select");
        control.appendChild(el("option", null, plainText(elem.placeholder) || "Select…"));
        control.firstChild.value = "";
        for (const o of options(elem)) {
          const opt = el("option", null, plainText(o.text));
          opt.value = o.value;
          control.appendChild(opt);
        }
        const initial = (current.selected_option || elem.initial_option || {}).value;
        if (initial) control.value = initial;
        read = () => control.value || null;
        break;
      }
      case "users_select":
      case "multi_users_select": {
        control = el("select");
        const multi = elem.type === "multi_users_select";
        control.multiple = multi;
        if (!multi) {
          control.appendChild(el("option", null, plainText(elem.placeholder) || "Select a person"));
          control.firstChild.value = "";
        }
        const chosen = new Set(current.selected_users || elem.initial_users ||
          [current.selected_user || elem.initial_user].filter(Boolean));
        for (const u of ctx.humans()) {
          const opt = el("option", null, u.real_name + " (@" + u.name + ")");
          opt.value = u.id;
          opt.selected = chosen.has(u.id);
          control.appendChild(opt);
        }
        read = multi ? () => [...control.selectedOptions].map((o) => o.value)
                     : () => control.value || null;
        break;
      }
      case "checkboxes": {
        control = el("div");
        const boxes = [];
        const chosen = new Set((current.selected_options || elem.initial_options || []).map((o) => o.value));
        for (const o of options(elem)) {
          const row = el("label");
          const box = el("input");
          box.type = "checkbox";
          box.value = o.value;
          box.checked = chosen.has(o.value);
          boxes.push(box);
          row.appendChild(box);
          row.appendChild(document.createTextNode(" " + plainText(o.text)));
          control.appendChild(row);
          control.appendChild(el("br"));
        }
        read = () => boxes.filter((b) => b.checked).map((b) => b.value);
        break;
      }
      case "datepicker": {
        control = el("input");
        control.type = "date";
        control.value = current.selected_date || elem.initial_date || "";
        read = () => control.value || null;
        break;
      }
      default:
        control = el("span", "blk-unknown", "[" + elem.type + "]");
        read = () => null;
    }
    control.id = id;
    wrap.appendChild(control);
    if (block.hint) wrap.appendChild(el("div", "hint", plainText(block.hint)));
    if (error) wrap.appendChild(el("div", "err", error));
    wrap.read = () => ({ block_id: block.block_id, action_id: elem.action_id, value: read() });
    return wrap;
  }

  return { render, input, plainText };
})();
