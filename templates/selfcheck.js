// The self-check page's grading: the same rules as `derive grade` (derive/exercises/grading.py),
// on the data the page carries. The values that follow from a student's own answers come from
// the worked solution's lines (STEPS, generated from the solution record), not from any
// derivation written here.
"use strict";

const NUMBER = /^[+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)(?:[eE][+-]?[0-9]+)?$/;
const BOUNDARY_SLACK = 1e-12;
// The characters Python's str.strip() removes (not JavaScript's trim(), which also removes U+FEFF).
const SPACE = "[\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
const EDGES = new RegExp("^" + SPACE + "+|" + SPACE + "+$", "g");

function strip(text) {
  return text.replace(EDGES, "");
}

function parseNumber(text) {
  if (text === null || text === undefined) return null;
  const cleaned = strip(text).replace(/\u2212/g, "-");
  if (!NUMBER.test(cleaned)) return null;
  const value = Number(cleaned.replace(",", "."));
  return Number.isFinite(value) ? value : null;
}

function within(number, value, tolerance) {
  return Math.abs(number - value) <= tolerance + BOUNDARY_SLACK * Math.max(1, Math.abs(value));
}

// Half away from zero to `digits` decimals, as the solution rounds (model/numeric.carried).
function carried(value, digits) {
  const scale = 10 ** digits;
  const scaled = Math.abs(value) * scale;
  if (!(scaled < 1e15)) return Number.isFinite(value) ? Number(value.toFixed(digits)) + 0 : value;
  const whole = Math.floor(Number(scaled.toPrecision(14)) + 0.5);
  return (value >= 0 ? whole / scale : -whole / scale) + 0;
}

// An update rule's state: at least `digits` significant figures (model/numeric.carried_significant).
function significant(value, digits) {
  if (value === 0 || !Number.isFinite(value)) return value;
  const leading = Math.floor(Math.log10(Number(Math.abs(value).toPrecision(14))));
  return carried(value, Math.max(digits, digits - 1 - leading));
}

// Question id → value, with `given` (by question id) in place of the right values and every
// line after them computed from them; `exact`: without rounding. Null when any line cannot
// be computed (the log of 0 or of a negative number, an overflow), as derive grade's
// recomputation fails then.
function run(program, functions, given, exact) {
  const values = Object.assign({}, program.constants);
  const overrides = {};
  for (const [question, value] of Object.entries(given)) {
    if (question in program.questions) overrides[program.questions[question]] = value;
  }
  const digits = exact ? null : program.digits;
  program.steps.forEach((step, k) => {
    if (step.name in overrides) {
      values[step.name] = overrides[step.name];
      return;
    }
    let value = Number(functions[k](...step.inputs.map((name) => values[name])));
    if (digits !== null && Number.isFinite(value)) value = step.significant ? significant(value, digits) : carried(value, digits);
    values[step.name] = value;
  });
  if (!Object.values(values).every(Number.isFinite)) return null;
  const result = {};
  for (const [question, name] of Object.entries(program.questions)) result[question] = values[name];
  return result;
}

// For each wrong answer that the student's other wrong answers change: the recomputed value,
// why follow-through is refused (or null), and the answers it follows from.
function followThrough(data, functions, own) {
  const program = data.program;
  if (!program) return {};
  const right = run(program, functions, {}, false);
  const rightExact = run(program, functions, {}, true);
  const byId = Object.fromEntries(data.questions.map((q) => [q.id, q]));
  const outcome = {};
  for (const [question, given] of Object.entries(own)) {
    const others = Object.fromEntries(Object.entries(own).filter(([q]) => q !== question));
    if (Object.keys(others).length === 0) continue;
    const recomputed = run(program, functions, others, false);
    if (recomputed === null) continue;
    const value = recomputed[question];
    const tolerance = byId[question].tolerance;
    if (Math.abs(value - right[question]) <= 1e-12 * Math.max(1, Math.abs(value)) || !within(given, value, tolerance)) continue;
    const sources = Object.keys(others).filter((source) => {
      const changed = run(program, functions, { [source]: others[source] }, true);
      const reference = rightExact[question];
      return changed !== null && Math.abs(changed[question] - reference) > 1e-12 * Math.max(1, Math.abs(reference));
    });
    if (sources.length === 0) continue;  // wrong only because of no earlier answer: not follow-through
    let reason = null;
    if (Math.abs(value) <= tolerance && tolerance < Math.abs(right[question])) {
      reason = data.texts.zero;
    } else if (sources.some((s) => within(value, others[s], tolerance) && !within(right[question], right[s], tolerance))) {
      reason = data.texts.copy;
    }
    outcome[question] = { value, reason, sources };
  }
  return outcome;
}

// Each question's verdict: status (right, follow-through, wrong, not a number, missing), the
// catalogued mistake it matches, the feedback, and the points earned.
function grade(data, functions, responses) {
  const own = {};
  for (const q of data.questions) {
    const number = parseNumber(responses[q.id]);
    if (number !== null && !within(number, q.value, q.tolerance)) own[q.id] = number;
  }
  const carriedOn = Object.keys(own).length ? followThrough(data, functions, own) : {};
  const seen = [];
  const verdicts = {};
  for (const q of data.questions) {
    const text = responses[q.id];
    const number = parseNumber(text);
    let status, mistake = "", feedback = "", points = 0;
    if (text === undefined || text === null || strip(text) === "") {
      status = "missing";
    } else if (number === null) {
      status = "not a number";
    } else if (within(number, q.value, q.tolerance)) {
      verdicts[q.id] = { status: "right", mistake: "", feedback: "", points: q.points };
      continue;
    } else {
      status = "wrong";
    }
    const outcome = carriedOn[q.id];
    if (status === "wrong" && outcome !== undefined) {
      if (outcome.reason === null) {
        status = "follow-through";
        points = q.points;
        feedback = data.texts.followed + " " + outcome.sources.map((s) => data.names[s]).join(", ") + ".";
      } else {
        feedback = data.texts.refused + " " + outcome.reason + ".";
      }
    }
    if (status === "wrong") {
      const matching = q.mistakes.filter((m) => within(number, m.value, q.tolerance));
      // where two mistakes give this value, the one this student's earlier answers showed
      matching.sort((a, b) => Number(!seen.includes(a.name)) - Number(!seen.includes(b.name)));
      if (matching.length) {
        mistake = matching[0].name;
        seen.push(mistake);
        feedback = (feedback ? feedback + " " : "") + matching[0].feedback;
      } else {
        feedback = (feedback ? feedback + " " : "") + data.texts.unexplained;
      }
    }
    verdicts[q.id] = { status, mistake, feedback, points };
  }
  return verdicts;
}

const LABELS = {
  "right": "Right.",
  "follow-through": "Follow-through:",
  "wrong": "Wrong.",
  "not a number": "Not a number.",
  "missing": "No answer yet.",
};

function check() {
  const data = JSON.parse(document.getElementById("derive-data").textContent);
  const responses = {};
  for (const input of document.querySelectorAll("input.derive-answer")) responses[input.dataset.question] = input.value;
  const verdicts = grade(data, STEPS, responses);
  let score = 0;
  for (const input of document.querySelectorAll("input.derive-answer")) {
    const verdict = verdicts[input.dataset.question];
    const place = document.getElementById("verdict-" + input.dataset.number);
    place.dataset.status = verdict.status;
    place.dataset.mistake = verdict.mistake;
    place.textContent = LABELS[verdict.status] + (verdict.feedback ? " " + verdict.feedback : "");
    input.setAttribute("aria-invalid", verdict.status === "right" || verdict.status === "follow-through" ? "false" : "true");
    score += verdict.points;
  }
  const total = data.questions.reduce((sum, q) => sum + q.points, 0);
  const summary = document.getElementById("derive-score");
  summary.textContent = `${+score.toFixed(6)} of ${total} points.`;
  summary.dataset.score = String(score);
  unlock();
}

// The worked solution, one section per step, each revealed on request once the student has
// checked their answers.
function lockSteps() {
  const worked = document.getElementById("worked");
  if (!worked) return;
  for (const section of worked.querySelectorAll(":scope > section")) {
    const heading = section.querySelector("h1, h2, h3");
    const details = document.createElement("details");
    details.className = "derive-step";
    const summary = document.createElement("summary");
    summary.textContent = heading ? heading.textContent : "Step";
    if (heading) heading.remove();
    details.appendChild(summary);
    while (section.firstChild) details.appendChild(section.firstChild);
    section.appendChild(details);
    summary.addEventListener("click", (event) => {
      if (document.body.dataset.unlocked !== "yes") event.preventDefault();
    });
    // opened any other way before trying (a link to a heading inside, find in page): closed again
    details.addEventListener("toggle", () => {
      if (details.open && document.body.dataset.unlocked !== "yes") details.open = false;
    });
  }
}

function unlock() {
  document.body.dataset.unlocked = "yes";
  const note = document.getElementById("derive-locked");
  if (note) note.textContent = "Open each step of the worked solution below to compare it with your own work.";
}

document.addEventListener("DOMContentLoaded", () => {
  lockSteps();
  document.getElementById("derive-check").addEventListener("click", check);
  for (const input of document.querySelectorAll("input.derive-answer")) {
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") check();
    });
  }
});
