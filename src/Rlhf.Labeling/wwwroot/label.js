'use strict';
(() => {
  const { api, el, signIn, markdown } = Rlhf;
  const $ = id => document.getElementById(id);
  const state = { items: [], index: -1, item: null, focus: 0, busy: false, thumbs: false };

  function message(text) { $('message').textContent = text || ''; }
  function status(text) { $('status').textContent = text || ''; }

  function show(section) {
    for (const id of ['instructions', 'item', 'done']) $(id).hidden = id !== section;
  }

  function applyState(s) {
    state.items = s.items;
    $('who').textContent = s.name;
    markdown($('instructions-text'), s.instructions);
    const ranked = s.items.filter(i => i.ranked).length;
    $('progress').textContent = `${ranked} of ${s.items.length} ranked`;
  }

  // The next unranked open item after `from` (wrapping); `except` is left out (the item being skipped).
  function nextPending(from, except) {
    const n = state.items.length;
    for (let step = 1; step <= n; step++) {
      const i = (from + step + n) % n;
      if (i !== except && !state.items[i].ranked && !state.items[i].closed) return i;
    }
    return -1;
  }

  async function refill() {
    applyState(await api('POST', '/api/labeler/claim'));
  }

  async function goPending(from, skipping) {
    const except = skipping ? from : -1;
    let i = nextPending(from, except);
    if (i < 0) {
      await refill();
      i = nextPending(from, except);
    }
    if (i < 0 && skipping) { status('Nothing else to rank right now.'); return; }
    if (i < 0) { show('done'); state.index = -1; return; }
    await open(i);
  }

  async function open(index) {
    if (index < 0 || index >= state.items.length) return;
    const item = await api('GET', `/api/labeler/items/${state.items[index].itemId}`);
    state.index = index;
    state.item = item;
    state.focus = 0;
    render();
    show('item');
  }

  function render() {
    const item = state.item;
    const n = item.completions.length;
    $('item-position').textContent = `Item ${state.index + 1} of ${state.items.length}`;
    $('item-state').textContent = item.closed ? '(closed: answers can no longer change)' : item.ranks ? '(ranked: you can change it)' : '';
    $('prompt').textContent = item.prompt;
    const list = $('completions');
    list.replaceChildren();
    item.completions.forEach((text, j) => {
      const select = el('select', { class: 'rank', 'aria-label': `Rank of completion ${j + 1}`, 'data-index': String(j) },
        el('option', { value: '', text: '–' }));
      for (let r = 1; r <= n; r++) select.append(el('option', { value: String(r), text: String(r) }));
      select.append(el('option', { value: 'F', text: 'F' }));
      select.value = item.ranks ? item.ranks[j] : '';
      select.disabled = item.closed;
      select.addEventListener('focus', () => setFocus(j));
      const up = el('button', { type: 'button', class: 'thumb', 'aria-label': `Thumbs up for completion ${j + 1}`, text: '👍', onclick: () => thumb(j, 'up') });
      const down = el('button', { type: 'button', class: 'thumb', 'aria-label': `Thumbs down for completion ${j + 1}`, text: '👎', onclick: () => thumb(j, 'down') });
      up.setAttribute('aria-pressed', String(item.thumbs[j] === 'up'));
      down.setAttribute('aria-pressed', String(item.thumbs[j] === 'down'));
      up.disabled = down.disabled = item.closed;
      const li = el('li', { class: 'completion', 'data-index': String(j) },
        el('div', { class: 'completion-text', text }),
        el('div', { class: 'completion-controls' }, el('label', { class: 'rank-label' }, 'Rank ', select), el('span', { class: 'thumbs' }, up, down)));
      li.addEventListener('click', () => setFocus(j));
      list.append(li);
    });
    $('submit').disabled = item.closed;
    setFocus(0);
    status('');
  }

  function setFocus(j) {
    const items = document.querySelectorAll('#completions li');
    if (!items.length) return;
    state.focus = Math.max(0, Math.min(items.length - 1, j));
    items.forEach((li, k) => li.classList.toggle('focused', k === state.focus));
  }

  function setRank(value) {
    const selects = document.querySelectorAll('#completions select.rank');
    const select = selects[state.focus];
    if (!select || select.disabled) return;
    if (![...select.options].some(o => o.value === value)) return;
    select.value = value;
    setFocus(state.focus + 1);
  }

  async function submit() {
    if (state.busy || !state.item || state.item.closed) return;
    const ranks = [...document.querySelectorAll('#completions select.rank')].map(s => s.value);
    if (ranks.some(r => r === '')) { status('Give every completion a rank (1 = best) or F before submitting.'); return; }
    state.busy = true;
    $('submit').disabled = true;
    status('Saving…');
    try {
      await api('POST', `/api/labeler/items/${state.item.itemId}/ranking`, { ranks });
      state.items[state.index].ranked = true;
      const ranked = state.items.filter(i => i.ranked).length;
      $('progress').textContent = `${ranked} of ${state.items.length} ranked`;
      status('Saved.');
      await goPending(state.index);
    } catch (e) {
      status(`Not saved: ${e.message}`);
    } finally {
      state.busy = false;
      $('submit').disabled = !!(state.item && state.item.closed);
    }
  }

  async function thumb(j, value) {
    if (!state.item || state.item.closed) return;
    const current = state.item.thumbs[j];
    const next = current === value ? null : value;
    try {
      await api('POST', `/api/labeler/items/${state.item.itemId}/thumb`, { position: j, thumb: next });
      state.item.thumbs[j] = next;
      const li = document.querySelectorAll('#completions li')[j];
      const [up, down] = li.querySelectorAll('button.thumb');
      up.setAttribute('aria-pressed', String(next === 'up'));
      down.setAttribute('aria-pressed', String(next === 'down'));
      status('Saved.');
    } catch (e) {
      status(`Not saved: ${e.message}`);
    }
  }

  function toggleThumbs() {
    state.thumbs = !state.thumbs;
    document.body.classList.toggle('thumbs-mode', state.thumbs);
    $('mode').setAttribute('aria-pressed', String(state.thumbs));
    $('mode').textContent = state.thumbs ? 'Ranking mode' : 'Thumbs mode';
  }

  const run = f => () => f().catch(e => message(e.message));

  document.addEventListener('keydown', e => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const tag = e.target && e.target.tagName;
    if (tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'BUTTON' && e.key === 'Enter') return;
    if (tag === 'SELECT' && e.key !== 'Enter') return;
    if (e.key === 'i') { show('instructions'); return; }
    if ($('item').hidden) return;
    const k = e.key;
    if (/^[1-9]$/.test(k)) setRank(k);
    else if (k === 'f' || k === 'F') setRank('F');
    else if (k === 'j' || k === 'ArrowDown') setFocus(state.focus + 1);
    else if (k === 'k' || k === 'ArrowUp') setFocus(state.focus - 1);
    else if (k === 'Enter') run(submit)();
    else if (k === 's') run(() => goPending(state.index, true))();
    else if (k === 'ArrowLeft' || k === 'p') run(() => open(state.index - 1))();
    else if (k === 'ArrowRight' || k === 'n') run(() => open(state.index + 1))();
    else if (k === 't') toggleThumbs();
    else if (k === 'u' && state.thumbs) run(() => thumb(state.focus, 'up'))();
    else if (k === 'd' && state.thumbs) run(() => thumb(state.focus, 'down'))();
    else return;
    e.preventDefault();
  });

  $('submit').addEventListener('click', run(submit));
  $('skip').addEventListener('click', run(() => goPending(state.index, true)));
  $('prev').addEventListener('click', run(() => open(state.index - 1)));
  $('next').addEventListener('click', run(() => open(state.index + 1)));
  $('mode').addEventListener('click', toggleThumbs);
  $('show-instructions').addEventListener('click', () => show('instructions'));
  $('start').addEventListener('click', run(() => state.index >= 0 ? open(state.index) : goPending(-1)));
  $('review').addEventListener('click', run(() => open(0)));

  (async () => {
    try {
      const who = await signIn();
      if (who && who.role === 'organiser') { location.replace('/organiser'); return; }
      applyState(await api('GET', '/api/labeler/state'));
      await refill();
      show('instructions');
      document.body.dataset.ready = 'true';
    } catch (e) {
      message(e.status === 401 || e.status === 403 ? `${e.message}` : `Could not load: ${e.message}`);
    }
  })();
})();
