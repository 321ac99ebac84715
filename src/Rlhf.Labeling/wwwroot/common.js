'use strict';
// Shared by both pages. Nothing from the server is ever parsed as HTML: text goes in through textContent.
const Rlhf = (() => {
  let csrf = null;

  // The private link carries the token in its fragment; trade it once for an HttpOnly cookie and drop it from the address bar.
  async function signIn() {
    const token = location.hash.length > 1 ? decodeURIComponent(location.hash.slice(1)) : null;
    if (!token) return null;
    history.replaceState(null, '', location.pathname);
    const r = await fetch('/api/login', {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ token }),
    });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.error || `sign-in failed (${r.status})`);
    csrf = body.csrf;
    return body;
  }

  async function api(method, url, body) {
    const headers = {};
    if (method !== 'GET') {
      headers['Content-Type'] = 'application/json';
      headers['X-CSRF-Token'] = csrf || '';
    }
    const r = await fetch(url, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) {
      const e = new Error(data.error || `request failed (${r.status})`);
      e.status = r.status;
      throw e;
    }
    if (data.csrf) csrf = data.csrf;
    return data;
  }

  // el('td', {text: value, class: 'x'}, child...) — attributes and text only, never markup.
  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c);
    return e;
  }

  // The instructions' Markdown subset (headings, numbered and bulleted lists, paragraphs, **bold**) built as
  // DOM nodes; any other markup stays literal text.
  function markdown(container, text) {
    const inline = line => line.split(/\*\*(.+?)\*\*/).map((part, i) => i % 2 ? el('strong', { text: part }) : document.createTextNode(part));
    container.replaceChildren();
    for (const block of text.replace(/\r/g, '').split(/\n\s*\n/)) {
      const lines = block.split('\n').filter(l => l.trim() !== '');
      if (!lines.length) continue;
      const heading = /^(#{1,6})\s+(.*)$/.exec(lines[0]);
      if (heading && lines.length === 1) { container.append(el('h3', {}, ...inline(heading[2]))); continue; }
      const ordered = /^\d+\.\s/.test(lines[0]), bullet = /^[-*]\s/.test(lines[0]);
      if (ordered || bullet) {
        const list = el(ordered ? 'ol' : 'ul');
        let item = null;
        for (const line of lines) {
          const m = /^(?:\d+\.|[-*])\s+(.*)$/.exec(line);
          if (m || !item) { item = []; list.append(Object.assign(el('li'), { _parts: item })); }
          item.push(m ? m[1] : line.trim());
        }
        for (const li of list.children) li.append(...inline(li._parts.join(' ')));
        container.append(list);
        continue;
      }
      container.append(el('p', {}, ...inline(lines.map(l => l.trim()).join(' '))));
    }
  }

  return { signIn, api, el, markdown };
})();
