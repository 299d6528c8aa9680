/* 适老化 toggles (font size, high contrast) remembered between pages, print, and the
   client-side search. Local, small, and optional: every page works without it. */
(function () {
  "use strict";
  var KEY = "gongkai-portal";
  var root = document.documentElement;
  function load() {
    try { return JSON.parse(window.localStorage.getItem(KEY)) || {}; } catch (e) { return {}; }
  }
  function save(prefs) {
    try { window.localStorage.setItem(KEY, JSON.stringify(prefs)); } catch (e) { /* private mode */ }
  }
  function apply(prefs) {
    root.classList.remove("font-large", "font-xlarge");
    if (prefs.font === "large" || prefs.font === "xlarge") { root.classList.add("font-" + prefs.font); }
    root.classList.toggle("contrast", !!prefs.contrast);
  }
  // Applied before the body is drawn, so a page never flashes in the default look.
  apply(load());

  function pressed(prefs) {
    var buttons = document.querySelectorAll("[data-font]");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].setAttribute("aria-pressed", String(buttons[i].getAttribute("data-font") === (prefs.font || "normal")));
    }
    var contrast = document.querySelector("[data-contrast]");
    if (contrast) { contrast.setAttribute("aria-pressed", String(!!prefs.contrast)); }
  }

  function words(text) { return text.toLowerCase().split(/\s+/).filter(Boolean); }

  function search() {
    var results = document.getElementById("search-results");
    if (!results || !window.gongkaiSearch) { return; }
    document.getElementById("search-fallback").hidden = true;
    var query = new URLSearchParams(window.location.search).get("q") || "";
    var input = document.getElementById("search-q");
    input.value = query;
    var status = document.getElementById("search-status");
    var terms = words(query);
    if (!terms.length) { status.textContent = "请输入标题、文号、索引号或关键词。"; return; }
    var found = window.gongkaiSearch.items.filter(function (item) {
      var text = item.text.toLowerCase();
      return terms.every(function (term) { return text.indexOf(term) !== -1; });
    });
    status.textContent = "找到" + found.length + "条信息。";
    found.slice(0, 200).forEach(function (item) {
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = item.url;
      a.textContent = item.title;
      li.appendChild(a);
      var time = document.createElement("time");
      time.textContent = " " + item.date;
      li.appendChild(time);
      results.appendChild(li);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var prefs = load();
    var toolbar = document.getElementById("toolbar");
    if (toolbar) { toolbar.hidden = false; }
    pressed(prefs);
    document.addEventListener("click", function (event) {
      var target = event.target.closest("button");
      if (!target) { return; }
      if (target.hasAttribute("data-font")) {
        prefs.font = target.getAttribute("data-font");
      } else if (target.hasAttribute("data-contrast")) {
        prefs.contrast = !prefs.contrast;
      } else if (target.hasAttribute("data-print")) {
        window.print();
        return;
      } else {
        return;
      }
      save(prefs);
      apply(prefs);
      pressed(prefs);
    });
    search();
  });
})();
