// The unimos web page: shows the model, and classifies the images the user
// chooses or drops, one request per image to POST /v1/classify.
"use strict";

const topK = 3;

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text; // never innerHTML: names come from users and models
  return e;
}

function percent(p) {
  return (100 * p).toFixed(1) + "%";
}

async function showModel() {
  const model = document.getElementById("model");
  try {
    const res = await fetch("v1/model");
    const m = await res.json();
    if (!res.ok) throw new Error(m.error || res.statusText);
    let line = m.backbone + ", " + m.classes.length + " classes";
    const t = m.training;
    if (t) {
      line += " · trained " + t.task + ", " + t.epochs + " epochs";
      if (t.final) line += ", target accuracy " + t.final.accuracy.toFixed(2) + "%";
    }
    model.textContent = line;
    const list = document.getElementById("classes");
    for (const c of m.classes) list.append(el("li", "", c));
  } catch (err) {
    model.textContent = "cannot read the model: " + err.message;
  }
}

async function classify(file) {
  const card = el("article", "result");
  card.dataset.state = "pending";
  card.dataset.name = file.name;
  const img = el("img");
  img.alt = file.name;
  img.src = URL.createObjectURL(file);
  const body = el("div", "body");
  const cls = el("div", "result-class", "classifying…");
  const bar = el("div", "bar");
  const fill = el("div");
  bar.append(fill);
  const conf = el("div", "result-confidence");
  body.append(el("div", "name", file.name), cls, bar, conf);
  card.append(img, body);
  document.getElementById("results").prepend(card);
  try {
    const res = await fetch("v1/classify?k=" + topK, {
      method: "POST",
      headers: { "Content-Type": file.type || "application/octet-stream" },
      body: file,
    });
    const answer = await res.json();
    if (!res.ok) throw new Error(answer.error || res.statusText);
    cls.textContent = answer.class;
    fill.style.width = percent(answer.confidence);
    conf.textContent = "confidence " + percent(answer.confidence);
    const top = el("ol");
    for (const t of answer.top.slice(1)) top.append(el("li", "", t.class + " " + percent(t.probability)));
    body.append(top);
    card.dataset.state = "done";
  } catch (err) {
    cls.textContent = err.message;
    bar.remove();
    card.dataset.state = "error";
  }
}

function classifyAll(files) {
  for (const f of files) classify(f);
}

document.addEventListener("DOMContentLoaded", () => {
  showModel();
  const input = document.getElementById("files");
  input.addEventListener("change", () => {
    classifyAll(input.files);
    input.value = "";
  });
  const drop = document.getElementById("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    classifyAll(e.dataTransfer.files);
  });
});
