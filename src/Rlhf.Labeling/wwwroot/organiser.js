'use strict';
(() => {
  const { api, el, signIn } = Rlhf;
  const $ = id => document.getElementById(id);
  let settingsLoaded = false;

  function message(text) { $('message').textContent = text || ''; }
  const fmt = x => x === null || x === undefined ? 'n/a' : x.toFixed(3);

  function fill(tableId, rows) {
    const body = document.querySelector(`#${tableId} tbody`);
    body.replaceChildren(...rows);
  }

  function render(s) {
    $('summary').textContent = `${s.items} items, ${s.closedItems} closed, ${s.rankings} rankings, overlap k = ${s.overlap}`;
    fill('labelers', s.labelers.map(l => el('tr', { 'data-labeler': l.name },
      el('td', { text: l.name }), el('td', { text: String(l.assigned) }), el('td', { text: String(l.ranked) }), el('td', { text: String(l.thumbs) }))));
    $('agreement-summary').textContent = `Krippendorff's alpha (ordinal): ${fmt(s.agreement.alpha)}; labelers whose mean tau-b is below ${s.agreement.flagBelow} are flagged.`;
    fill('agreement', s.agreement.labelers.map(l => el('tr', { 'data-labeler': l.name, class: l.flagged ? 'flagged' : '' },
      el('td', { text: l.name }), el('td', { text: String(l.rankings) }), el('td', { text: String(l.prompts) }),
      el('td', { text: fmt(l.meanTauB) }), el('td', { class: 'flag', text: l.flagged ? 'yes' : '' }))));
    $('short-summary').textContent = `${s.itemsShortOfOverlap} item(s) have fewer than ${s.overlap} rankings` +
      (s.itemsShortOfOverlap > s.shortOfOverlap.length ? ` (first ${s.shortOfOverlap.length} shown)` : '');
    fill('short', s.shortOfOverlap.map(i => el('tr', { 'data-prompt': i.promptId },
      el('td', { text: i.promptId }), el('td', { text: String(i.rankings) }), el('td', { text: i.closed ? 'yes' : '' }),
      el('td', {}, el('button', { type: 'button', text: i.closed ? 'Reopen' : 'Close', onclick: () => setClosed(i.promptId, !i.closed) })))));
    if (!settingsLoaded) {
      $('overlap').value = String(s.overlap);
      $('instructions').value = s.instructions;
      settingsLoaded = true;
    }
    document.body.dataset.ready = 'true';
  }

  async function setClosed(promptId, closed) {
    try {
      await api('POST', '/api/organiser/items/closed', { promptId, closed });
      await refresh();
    } catch (err) {
      message(err.message);
    }
  }

  async function refresh() {
    try {
      render(await api('GET', '/api/organiser/status'));
      message('');
    } catch (e) {
      message(e.message);
    }
  }

  $('add-labeler').addEventListener('submit', async e => {
    e.preventDefault();
    try {
      const added = await api('POST', '/api/organiser/labelers', { name: $('labeler-name').value.trim() });
      $('new-link-name').textContent = added.name;
      $('new-link-url').value = `${location.origin}/label#${added.token}`;
      $('new-link').hidden = false;
      $('labeler-name').value = '';
      await refresh();
    } catch (err) {
      message(err.message);
    }
  });

  $('settings').addEventListener('submit', async e => {
    e.preventDefault();
    try {
      await api('POST', '/api/organiser/settings', { overlap: Number($('overlap').value), instructions: $('instructions').value });
      message('Settings saved.');
      await refresh();
    } catch (err) {
      message(err.message);
    }
  });

  $('close-complete').addEventListener('click', async () => {
    try {
      const r = await api('POST', '/api/organiser/close-complete');
      message(`${r.closed} item(s) closed.`);
      await refresh();
    } catch (err) {
      message(err.message);
    }
  });

  (async () => {
    try {
      const who = await signIn();
      if (who && who.role !== 'organiser') { message('This is a labeler link; open it at /label.'); return; }
      await refresh();
      setInterval(refresh, 3000);
    } catch (e) {
      message(e.message);
    }
  })();
})();
