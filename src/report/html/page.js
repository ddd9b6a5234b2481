// cutover report: a copy button beside every command. Nothing is loaded from elsewhere.
(function () {
  "use strict";
  var cmds = document.querySelectorAll(".cmd code");
  for (var i = 0; i < cmds.length; i++) {
    (function (code) {
      var b = document.createElement("button");
      b.type = "button";
      b.textContent = "copy";
      b.title = "Copy the command";
      b.addEventListener("click", function () {
        var text = code.textContent;
        var done = function () { b.textContent = "copied"; };
        if (navigator.clipboard && navigator.clipboard.writeText) {
          navigator.clipboard.writeText(text).then(done, function () { select(code); });
        } else {
          select(code);
        }
      });
      code.parentNode.appendChild(b);
    })(cmds[i]);
  }
  function select(el) {
    var r = document.createRange();
    r.selectNodeContents(el);
    var s = window.getSelection();
    s.removeAllRanges();
    s.addRange(r);
  }
  document.documentElement.setAttribute("data-ready", "1");
})();
