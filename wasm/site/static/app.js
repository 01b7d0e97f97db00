// The explainer page: it reads the controls, asks the WebAssembly module
// (package explain) for the result and draws it. It computes nothing itself.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const LANES = ["attacker", "client", "synproxy", "server"];
  const LANE_LABEL = { attacker: "attacker", client: "client", synproxy: "synproxy", server: "server" };
  // synproxy-lite's lanes: the daemon, and the backend it connects to.
  const LANE_LABEL_LITE = { attacker: "attacker", client: "client", synproxy: "synproxy-lite", server: "backend" };

  let api = null;        // the explainer object from Go
  let defaults = null;   // explain.Default()
  let scenario = null;   // the current explain.Scenario
  let step = 0;
  let playTimer = null;

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c);
    return e;
  }
  function svg(tag, attrs, text) {
    const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function setStatus(msg) { $("status").textContent = msg; }
  function showError(msg) {
    const e = $("error");
    e.textContent = msg || "";
    e.hidden = !msg;
  }
  function call(name, ...args) {
    const r = api[name](...args);
    if (r && r.error) throw new Error(r.error);
    return r;
  }

  // ---- inputs ----
  const numFields = ["clientISN", "mss", "wscale", "count", "synSecond", "ackSeqDelta", "ackAckDelta"];
  const boolFields = ["ts", "sack", "hasWScale", "ecn"];

  function fillInputs(inp) {
    $("client").value = inp.client;
    $("server").value = inp.server;
    $("key").value = inp.key;
    for (const f of numFields) $(f).value = String(inp[f]);
    for (const f of boolFields) $(f).checked = !!inp[f];
    $("ackDelay").value = String(inp.ackDelay);
    $(inp.handshake === "lite" ? "hs-lite" : "hs-kernel").checked = true;
  }

  function parseInt32(id, lo, hi) {
    const s = $(id).value.trim();
    if (!/^[-+]?(0x[0-9a-f]+|\d+)$/i.test(s)) throw new Error(id + ": not a whole number: \"" + s + "\"");
    let neg = s.startsWith("-");
    const body = s.replace(/^[-+]/, "");
    let v = Number(body);
    if (neg) v = -v;
    if (!Number.isSafeInteger(v) || v < lo || v > hi) throw new Error(id + ": must be " + lo + ".." + hi);
    return v;
  }

  function readInputs() {
    const inp = Object.assign({}, defaults);
    inp.client = $("client").value.trim();
    inp.server = $("server").value.trim();
    inp.key = $("key").value.trim();
    inp.clientISN = parseInt32("clientISN", 0, 4294967295);
    inp.mss = parseInt32("mss", 0, 65535);
    inp.wscale = parseInt32("wscale", 0, 255);
    inp.count = parseInt32("count", 0, 4294967295);
    inp.synSecond = parseInt32("synSecond", 0, 59);
    inp.ackSeqDelta = parseInt32("ackSeqDelta", -2147483648, 2147483647);
    inp.ackAckDelta = parseInt32("ackAckDelta", -2147483648, 2147483647);
    for (const f of boolFields) inp[f] = $(f).checked;
    inp.ackDelay = parseInt32("ackDelay", 0, 4294967295);
    inp.handshake = $("hs-lite").checked ? "lite" : "kernel";
    return inp;
  }

  // ---- rendering helpers ----
  function bitsNode(bits, slotBits) {
    const code = el("code", { class: "bits" });
    for (let i = 0; i < 32; i += 8) {
      const span = el("span", { class: i < 8 && slotBits ? "byte slot" : "byte", text: bits.slice(i, i + 8) });
      code.append(span);
      if (i < 24) code.append(" ");
    }
    return code;
  }
  function rowsInto(container, rows, slotBits) {
    container.replaceChildren();
    for (const r of rows) {
      const d = el("div", { class: "row" + (r.op === "=" ? " total" : "") });
      d.append(el("span", { class: "op", text: r.op || "" }),
        el("span", { class: "label", text: r.label }),
        bitsNode(r.bits, slotBits),
        el("code", { class: "hex", text: "0x" + r.hex }),
        el("span", { class: "dec", text: String(r.value) }));
      if (r.note) d.append(el("span", { class: "rnote", text: r.note }));
      container.append(d);
    }
  }

  // ---- the sequence diagram ----
  function drawDiagram() {
    const s = $("seq-svg");
    s.replaceChildren(svg("desc", { id: "seq-desc" }, "Sequence diagram of the handshake: " +
      scenario.steps.map((st, i) => (i + 1) + ". " + st.packet.from + " to " + st.packet.to + " " + st.packet.flags).join("; ")));
    // Draw at about the size shown, so the labels stay readable on a phone.
    const avail = $("diagram").clientWidth - 12;
    const W = Math.max(340, Math.min(640, avail || 640)), top = 34, dy = 30, H = top + dy * scenario.steps.length + 10;
    s.setAttribute("viewBox", "0 0 " + W + " " + H);
    const margin = W < 500 ? 40 : 70, gap = (W - 2 * margin) / (LANES.length - 1);
    const x = (lane) => margin + LANES.indexOf(lane) * gap;
    const labels = scenario.input.handshake === "lite" ? LANE_LABEL_LITE : LANE_LABEL;
    for (const lane of LANES) {
      s.append(svg("line", { x1: x(lane), y1: 24, x2: x(lane), y2: H, class: "lane lane-" + lane }));
      s.append(svg("text", { x: x(lane), y: 16, class: "lane-name", "text-anchor": "middle" }, labels[lane]));
    }
    scenario.steps.forEach((st, i) => {
      const p = st.packet, y = top + dy * i + 14;
      const x1 = x(p.from), x2 = x(p.to);
      const g = svg("g", { class: "msg" + (i === step ? " current" : "") + (i > step ? " future" : "") +
        (p.dropped ? " dropped" : "") + (p.lost ? " lost" : "") + (p.from === "attacker" || p.to === "attacker" ? " evil" : ""),
        "data-step": String(i) });
      const dir = x2 > x1 ? 1 : -1;
      g.append(svg("line", { x1: x1, y1: y, x2: x2 - dir * 6, y2: y, class: "arrow" }));
      g.append(svg("path", { d: "M" + x2 + " " + y + " l" + (-dir * 8) + " -4 v8 z", class: "head" }));
      const label = p.flags + (p.dropped ? " ✗ dropped" : "") + (p.lost ? " (lost)" : "");
      g.append(svg("text", { x: (x1 + x2) / 2, y: y - 5, "text-anchor": "middle", class: "msg-label" }, label));
      g.addEventListener("click", () => { stopPlay(); setStep(i); });
      s.append(g);
    });
  }

  function setStep(i) {
    if (!scenario) return;
    step = Math.max(0, Math.min(scenario.steps.length - 1, i));
    drawDiagram();
    const st = scenario.steps[step], p = st.packet;
    $("step-count").textContent = "Packet " + (step + 1) + " of " + scenario.steps.length;
    $("step-title").textContent = (step + 1) + ". " + st.title;
    $("step-text").textContent = st.text;
    $("pkt-route").textContent = p.from + " → " + p.to + "  (" + p.src + " → " + p.dst + ")";
    $("pkt-flags").textContent = p.flags;
    $("pkt-seq").textContent = p.seq + "  (0x" + hex(p.seq) + ")";
    $("pkt-ack").textContent = p.ack + "  (0x" + hex(p.ack) + ")";
    $("pkt-window").textContent = String(p.window);
    const ul = $("pkt-options");
    ul.replaceChildren();
    if (!p.options || p.options.length === 0) ul.append(el("li", { text: "none" }));
    for (const o of p.options || []) {
      ul.append(el("li", {}, el("span", { text: o.text }), " ", el("code", { text: o.bytes })));
    }
    $("back").disabled = step === 0;
    $("first").disabled = step === 0;
    $("next").disabled = step === scenario.steps.length - 1;
    drawCalc(st);
  }

  function hex(v) { return (v >>> 0).toString(16).padStart(8, "0"); }

  function drawCalc(st) {
    const e = scenario.encoding;
    const steps = $("calc-steps");
    steps.replaceChildren();
    $("calc-verdict").textContent = "";
    $("calc-verdict").className = "verdict";
    if (st.calc === "check" && st.check) {
      const c = st.check;
      $("calc-intro").textContent = "The check of this ACK (seq " + c.ackSeq + ", ack " + c.ackAck + ") at slot " + c.count +
        ": the kernel subtracts 1 from both, removes h0 and the client's ISN, and decodes the rest.";
      rowsInto($("calc-rows"), c.rows, true);
      for (const t of c.steps) steps.append(el("li", { text: t }));
      $("calc-verdict").textContent = c.valid ? "Valid: MSS " + c.mss + " (index " + c.index + "), made " + c.age + " slot(s) ago" : "Rejected: " + c.reason;
      $("calc-verdict").className = "verdict " + (c.valid ? "ok" : "bad");
    } else {
      const what = st.calc === "encode" ? "This SYN-ACK's sequence number is the cookie, added up as the kernel does:" :
        "The cookie of this handshake (the SYN-ACK's sequence number), added up as the kernel does:";
      $("calc-intro").textContent = what + " client MSS " + e.mssIn + " → index " + e.index + " (table MSS " + e.mss + ").";
      rowsInto($("calc-rows"), e.rows.concat([e.layout]), false);
      const last = $("calc-rows").lastChild;
      last.classList.add("layout");
      last.querySelector(".byte").classList.add("slot");
    }
    const t = scenario.ts;
    if (t.present) {
      rowsInto($("ts-rows"), t.rows, false);
      const bitsRow = $("ts-rows").children[2];
      if (bitsRow) bitsRow.classList.add("tsbits");
      $("ts-note").textContent = "Bits 5..0 = " + t.bitsText + ": ECN " + (t.ecn ? "1" : "0") + ", SACK " + (t.sack ? "1" : "0") +
        ", " + t.wscale + ". Decoded from the ACK's TSecr: window scale " + (t.decoded.HasWScale ? t.decoded.WScale : "none") +
        ", SACK " + (t.decoded.SACK ? "yes" : "no") + ", ECN " + (t.decoded.ECN ? "yes" : "no") + ". " + t.note;
    } else {
      $("ts-rows").replaceChildren();
      $("ts-note").textContent = t.note;
    }
  }

  // ---- the two layouts ----
  function layoutCard(l) {
    const card = $("layout-" + l.profile);
    const code = el("code", { class: "bits lbits" });
    l.fields.forEach((f, i) => {
      code.append(el("span", { class: "lf lf" + i, title: f.name, text: l.bits.slice(31 - f.hi, 32 - f.lo) }));
    });
    const dl = el("ul", { class: "lfields" });
    l.fields.forEach((f, i) => dl.append(el("li", { class: "lf" + i },
      el("b", { text: f.name }), (f.hi === f.lo ? " (bit " + f.hi : " (bits " + f.hi + ".." + f.lo) + ") = " + f.value + ": " + f.text)));
    const odds = el("ul", { class: "odds" });
    for (const o of l.odds) odds.append(el("li", {}, o.case + ": ", el("b", { text: "2^−" + o.exp })));
    card.replaceChildren(el("h4", { text: l.profile === "linux" ? "linux: the kernel's layout" : "full: every option in the ISN" }),
      el("p", { class: "lisn", text: "ISN " + l.isn + " (0x" + hex(l.isn) + ")" }), code, dl,
      el("p", { class: "lts", text: "Timestamp: " + (l.ts || "none (the SYN had no timestamp option)") }),
      el("p", { class: "lcheck", text: "The client's ACK: " + l.check }),
      el("p", { text: "Odds that a forged ACK passes:" }), odds);
  }
  function drawLayouts() {
    const [lin, full] = scenario.layouts;
    layoutCard(lin);
    layoutCard(full);
    const rows = [
      ["MSS", (k) => String(k.mss)],
      ["window scale", (k) => k.hasWScale ? "shift " + k.wscale : "none"],
      ["SACK", (k) => k.sack ? "yes" : "no"],
      ["largest window", (k) => k.window + " bytes"],
      ["at 40 ms", (k) => "≈ " + k.mbps + " Mbit/s"],
    ];
    const body = $("keep-body");
    body.replaceChildren();
    for (const [name, fmt] of rows) {
      const a = fmt(lin.kept), b = fmt(full.kept);
      body.append(el("tr", { class: a === b ? "" : "differs" }, el("th", { scope: "row", text: name }),
        el("td", { text: a }), el("td", { text: b })));
    }
  }

  function recompute() {
    if (!api) return;
    let inp;
    try {
      inp = readInputs();
      scenario = call("scenario", inp);
    } catch (err) {
      showError(err.message);
      return;
    }
    showError("");
    $("hs-summary").textContent = scenario.summary;
    const e = scenario.encoding, c = scenario.check;
    $("summary-isn").textContent = e.isn + " (0x" + hex(e.isn) + ")";
    $("summary-check").textContent = (c.valid ? "valid, MSS " + c.mss : "rejected: " + c.reason) +
      " (ACK " + inp.ackDelay + " s after the SYN, slot " + scenario.ackSlot + ")";
    $("summary-check").title = "ACK " + (inp.ackDelay / 60).toFixed(2) + " minutes after the SYN";
    $("summary-check").className = c.valid ? "ok" : "bad";
    $("summary-life").textContent = "until " + scenario.lifetime + " s after the SYN (made " + inp.synSecond + " s into slot " + inp.count + ")";
    setStep(Math.min(step, scenario.steps.length - 1));
    drawLayouts();
    try { drawClaims(call("claims", inp)); } catch (err) { showError(err.message); }
  }

  // ---- play ----
  function stopPlay() {
    if (playTimer) clearInterval(playTimer);
    playTimer = null;
    $("play").textContent = "▶ Play";
    $("play").setAttribute("aria-pressed", "false");
  }
  function togglePlay() {
    if (playTimer) { stopPlay(); return; }
    if (step >= scenario.steps.length - 1) setStep(0);
    $("play").textContent = "⏸ Pause";
    $("play").setAttribute("aria-pressed", "true");
    playTimer = setInterval(() => {
      if (step >= scenario.steps.length - 1) { stopPlay(); return; }
      setStep(step + 1);
    }, 1600);
  }

  // ---- forging ----
  const forgeTotals = { random: { n: 0, a: 0, p: 0 }, top: { n: 0, a: 0, p: 0 } };
  let forgeSeed = 1;
  function forge(top) {
    let inp;
    try { inp = readInputs(); } catch (err) { showError(err.message); return; }
    const tries = Number($("forge-tries").value);
    setStatus("Forging " + tries.toLocaleString("en") + " ACKs…");
    setTimeout(() => {
      try {
        const t0 = performance.now();
        const r = call("forge", inp, tries, top, forgeSeed++);
        const ms = performance.now() - t0;
        const tot = forgeTotals[top ? "top" : "random"];
        tot.n += r.tries; tot.a += r.accepted; tot.p = r.predicted;
        drawForge();
        setStatus("Forged " + r.tries.toLocaleString("en") + " ACKs in " + ms.toFixed(0) + " ms: " + r.accepted +
          " accepted" + (r.hits && r.hits.length ? " (e.g. ack " + ((r.hits[0] + 1) >>> 0) + ")" : "") + ".");
      } catch (err) { showError(err.message); setStatus(""); }
    }, 20);
  }
  function drawForge() {
    for (const [k, tot] of Object.entries(forgeTotals)) {
      const row = $("forge-row-" + k);
      row.querySelector(".n").textContent = tot.n.toLocaleString("en");
      row.querySelector(".a").textContent = String(tot.a);
      row.querySelector(".m").textContent = tot.n ? (tot.a / tot.n).toExponential(2) : "–";
      row.querySelector(".e").textContent = tot.n ? (tot.n * (tot.p || (k === "top" ? 4 / 2 ** 24 : 2 ** -29))).toFixed(2) : "0";
    }
  }
  function search() {
    let inp;
    try { inp = readInputs(); } catch (err) { showError(err.message); return; }
    setStatus("Trying all 2^25 candidates with an accepted time slot…");
    setTimeout(() => {
      try {
        const r = call("search", inp);
        const list = r.hits.map((h, i) => "ack " + ((h + 1) >>> 0) + " (MSS " + r.mss[i] + ", age " + r.age[i] + ")").join(", ");
        $("forge-search-result").textContent = "Of all 2^32 ack numbers, exactly " + r.hits.length + " pass for this handshake right now (" +
          r.searched.toLocaleString("en") + " candidates with an accepted slot byte tried, the rest fail the time check): " + list +
          ". " + r.hits.length + " / 2^32 = " + r.rate.toExponential(3) + " = 2^" + Math.log2(r.rate).toFixed(0) + ".";
        setStatus("Search done.");
      } catch (err) { showError(err.message); setStatus(""); }
    }, 20);
  }

  // ---- flood ----
  let flood = null, floodTimer = null;
  function floodConfig() {
    const cfg = call("floodDefaults");
    cfg.backlog = parseInt32("flood-backlog", 1, 65536);
    cfg.attack = parseInt32("flood-attack", 0, 10000);
    cfg.legit = parseInt32("flood-legit", 0, 1000);
    cfg.timeout = parseInt32("flood-timeout", 1, 600);
    try { cfg.key = readInputs().key; } catch (_) { /* keep the example key */ }
    return cfg;
  }
  function runFlood() {
    stopFlood();
    try {
      flood = call("flood", floodConfig());
    } catch (err) { showError(err.message); return; }
    showError("");
    const range = $("flood-tick");
    range.max = String(flood.ticks.length - 1);
    drawFloodChart();
    setFloodTick(Math.min(Number(range.value), flood.ticks.length - 1));
  }
  function setFloodTick(i) {
    if (!flood) return;
    const t = flood.ticks[i];
    $("flood-tick").value = String(i);
    $("flood-tick-out").textContent = i + (t.attacking ? " (under attack)" : "");
    let served = 0, refused = 0, cs = 0, cr = 0;
    for (let k = 0; k <= i; k++) {
      served += flood.ticks[k].served; refused += flood.ticks[k].refused;
      cs += flood.ticks[k].cookieServed; cr += flood.ticks[k].cookieRefused;
    }
    const cells = $("queue-cells");
    const n = flood.config.backlog;
    if (cells.children.length !== n) {
      cells.replaceChildren();
      for (let k = 0; k < n; k++) cells.append(el("span", { class: "cell" }));
    }
    for (let k = 0; k < n; k++) {
      cells.children[k].className = "cell" + (k < t.queueAttack ? " spoofed" : k < t.queue ? " legit" : "");
    }
    const nc = $("flood-nocookie"), wc = $("flood-cookie");
    nc.querySelector(".q-text").textContent = "queue " + t.queue + " / " + n + " (" + t.queueAttack + " spoofed)" + (t.queue >= n ? " — FULL" : "");
    nc.querySelector(".counts").textContent = "this second: " + t.served + " served, " + t.refused + " refused · so far: " + served + " served, " + refused + " refused";
    wc.querySelector(".q-text").textContent = "stored entries: " + t.cookieState + " · forged ACKs this second: " + t.forgedTried + ", passed " + t.forgedPassed;
    wc.querySelector(".counts").textContent = "this second: " + t.cookieServed + " served, " + t.cookieRefused + " refused · so far: " + cs + " served, " + cr + " refused";
    nc.classList.toggle("full", t.queue >= n);
    $("flood-totals").textContent = "Whole run: without cookies " + flood.served + " clients served, " + flood.refused + " refused; with cookies " +
      flood.cookieServed + " served, " + flood.cookieRefused + " refused, " + flood.cookies + " cookies computed, " + flood.checks +
      " ACKs checked (" + flood.forgedTried + " forged, " + flood.forgedPassed + " passed).";
    const mark = $("flood-chart").querySelector(".now");
    if (mark) { const x = 30 + i * (560 / flood.ticks.length); mark.setAttribute("x1", x); mark.setAttribute("x2", x); }
  }
  function drawFloodChart() {
    const s = $("flood-chart");
    s.replaceChildren(svg("desc", { id: "flood-chart-desc" }, "Queue occupancy and legitimate clients refused per second"));
    const T = flood.ticks.length, w = 560 / T, n = flood.config.backlog;
    const maxL = Math.max(1, flood.config.legit);
    flood.ticks.forEach((t, i) => {
      const x = 30 + i * w;
      if (t.attacking) s.append(svg("rect", { x: x, y: 20, width: w, height: 120, class: "attack-bg" }));
      const qh = 120 * t.queue / n;
      s.append(svg("rect", { x: x, y: 140 - qh, width: Math.max(w - 1, 1), height: qh, class: "q-bar" }));
      const rh = 120 * t.refused / maxL;
      s.append(svg("rect", { x: x, y: 140 - rh, width: Math.max(w / 2 - 0.5, 0.5), height: rh, class: "refused-bar" }));
      const ch = 120 * t.cookieRefused / maxL;
      s.append(svg("rect", { x: x + w / 2, y: 140 - ch, width: Math.max(w / 2 - 0.5, 0.5), height: Math.max(ch, 1), class: "cookie-bar" }));
    });
    s.append(svg("line", { x1: 30, y1: 140, x2: 590, y2: 140, class: "axis" }));
    s.append(svg("text", { x: 30, y: 155, class: "chart-label" }, "0 s"));
    s.append(svg("text", { x: 590, y: 155, class: "chart-label", "text-anchor": "end" }, T + " s"));
    s.append(svg("line", { x1: 30, y1: 20, x2: 30, y2: 140, class: "now" }));
  }
  function stopFlood() {
    if (floodTimer) clearInterval(floodTimer);
    floodTimer = null;
    $("flood-play").textContent = "▶ Play";
    $("flood-play").setAttribute("aria-pressed", "false");
  }
  function playFlood() {
    if (floodTimer) { stopFlood(); return; }
    if (!flood) runFlood();
    if (!flood) return;
    let i = Number($("flood-tick").value);
    if (i >= flood.ticks.length - 1) i = 0;
    $("flood-play").textContent = "⏸ Pause";
    $("flood-play").setAttribute("aria-pressed", "true");
    floodTimer = setInterval(() => {
      setFloodTick(i);
      if (++i >= flood.ticks.length) stopFlood();
    }, 120);
  }

  // ---- claims ----
  function drawClaims(claims) {
    const list = $("claims-list");
    list.replaceChildren();
    for (const c of claims) {
      const demo = el("ul", { class: "demo" });
      for (const d of c.demo) demo.append(el("li", {}, el("code", { text: d })));
      const card = el("article", { class: "claim", id: "claim-" + c.id },
        el("p", { class: "claim-text" }, el("span", { class: "badge " + (c.verdict.startsWith("true") ? "true" : c.verdict === "false" || c.verdict.startsWith("false") ? "false" : "mis"), text: c.verdict }), " ", el("q", { text: c.claim })),
        el("div", { class: "kernel" }, el("h4", { text: "What the kernel does" }), el("p", { text: c.kernel })),
        el("div", { class: "computed" }, el("h4", { text: "Computed here" + (c.shown ? "" : " (not shown for these inputs)") }), demo));
      list.append(card);
    }
  }

  // ---- wiring ----
  function wire() {
    $("inputs").addEventListener("input", recompute);
    $("inputs").addEventListener("change", recompute);
    $("inputs").addEventListener("submit", (ev) => ev.preventDefault());
    $("handshake-switch").addEventListener("change", recompute);
    $("random-key").addEventListener("click", () => {
      try { $("key").value = call("randomKey").key; recompute(); } catch (err) { showError(err.message); }
    });
    $("example-key").addEventListener("click", () => { $("key").value = defaults.key; recompute(); });
    $("now").addEventListener("click", () => {
      const w = call("wallSlot");
      $("count").value = String(w.slot);
      $("synSecond").value = String(w.second);
      recompute();
    });
    const shiftMin = (d) => {
      const m = Math.max(0, (Number($("ackDelay").value) || 0) + 60 * d);
      $("ackDelay").value = String(m);
      recompute();
    };
    $("minus-min").addEventListener("click", () => shiftMin(-1));
    $("plus-min").addEventListener("click", () => shiftMin(1));
    $("replay-late").addEventListener("click", () => {
      if (!scenario) return;
      $("ackDelay").value = String(scenario.lifetime);
      recompute();
      setStep(scenario.steps.findIndex((s) => s.id === "ack"));
    });
    $("no-ts").addEventListener("click", () => { $("ts").checked = false; recompute(); });
    $("reset").addEventListener("click", () => { fillInputs(defaults); step = 0; recompute(); });
    $("first").addEventListener("click", () => { stopPlay(); setStep(0); });
    $("back").addEventListener("click", () => { stopPlay(); setStep(step - 1); });
    $("next").addEventListener("click", () => { stopPlay(); setStep(step + 1); });
    $("play").addEventListener("click", togglePlay);
    window.addEventListener("resize", () => { if (scenario) drawDiagram(); });
    $("diagram").addEventListener("keydown", (ev) => {
      if (ev.key === "ArrowRight" || ev.key === "ArrowDown") { stopPlay(); setStep(step + 1); ev.preventDefault(); }
      if (ev.key === "ArrowLeft" || ev.key === "ArrowUp") { stopPlay(); setStep(step - 1); ev.preventDefault(); }
      if (ev.key === "Home") { stopPlay(); setStep(0); ev.preventDefault(); }
      if (ev.key === "End") { stopPlay(); setStep(scenario.steps.length - 1); ev.preventDefault(); }
    });
    $("forge-random").addEventListener("click", () => forge(false));
    $("forge-top").addEventListener("click", () => forge(true));
    $("forge-search").addEventListener("click", search);
    $("forge-clear").addEventListener("click", () => {
      for (const t of Object.values(forgeTotals)) { t.n = 0; t.a = 0; }
      drawForge();
      $("forge-search-result").textContent = "";
    });
    $("flood-run").addEventListener("click", runFlood);
    $("flood-play").addEventListener("click", playFlood);
    $("flood-form").addEventListener("change", runFlood);
    $("flood-form").addEventListener("submit", (ev) => { ev.preventDefault(); runFlood(); });
    $("flood-tick").addEventListener("input", () => { stopFlood(); setFloodTick(Number($("flood-tick").value)); });
  }

  function start() {
    api = globalThis.newExplainer();
    defaults = call("defaults");
    fillInputs(defaults);
    const fd = call("floodDefaults");
    $("flood-backlog").value = String(fd.backlog);
    $("flood-attack").value = String(fd.attack);
    $("flood-legit").value = String(fd.legit);
    $("flood-timeout").value = String(fd.timeout);
    wire();
    recompute();
    runFlood();
    setFloodTick(40);
    document.body.classList.add("ready");
    setStatus("Ready. Every value below is computed by the cookie package in WebAssembly.");
  }

  // showNotice puts a message at the top of the page, where it is seen
  // first: paragraphs of text and code, built as nodes (no HTML strings).
  function showNotice(...paras) {
    const n = $("notice");
    n.replaceChildren(...paras.map((parts) => el("p", {}, ...parts.map((x) =>
      typeof x === "string" ? x : el("code", { text: x.code })))));
    n.hidden = false;
  }

  // servedHint is how to serve the page, for a copy opened as a file.
  const servedHint = [
    ["Serve it instead: ", { code: "synproxy-lite explain" }, " serves this page on ",
      { code: "http://127.0.0.1:8088/" }, ". An exported copy (", { code: "synproxy-lite explain --export DIR" },
      ") is served by any static file server, for example ", { code: "python3 -m http.server" },
      " in its directory, then ", { code: "http://localhost:8000/" }, "."],
  ];

  async function load() {
    if (location.protocol === "file:") {
      // Browsers do not let a page opened from a file fetch its
      // WebAssembly module: say so here rather than fail further down.
      setStatus("");
      showNotice(["This page was opened from a file (file://), and browsers do not let it load its WebAssembly module from there."], ...servedHint);
      return;
    }
    const go = new Go();
    globalThis.onExplainerReady = start;
    let result;
    try {
      result = await WebAssembly.instantiateStreaming(fetch("explain.wasm"), go.importObject);
    } catch (_) {
      // A file server that does not send application/wasm: load the bytes instead.
      const resp = await fetch("explain.wasm");
      result = await WebAssembly.instantiate(await resp.arrayBuffer(), go.importObject);
    }
    go.run(result.instance);
  }
  load().catch((err) => {
    setStatus("");
    showNotice(["Could not start the WebAssembly module: " + err.message]);
    showError("Could not start the WebAssembly module: " + err.message);
  });
})();
