// Review keys: every shortcut presses a visible link or button that carries data-key,
// so the keyboard and the mouse do exactly the same thing. Keys typed into a field stay
// text; Escape leaves the field.
(function () {
  "use strict";

  function typing(target) {
    return target instanceof HTMLElement && target.closest("input, textarea, select, [contenteditable]") !== null;
  }

  function fieldsetDisabled() {
    const fieldset = document.querySelector("#verdict-form fieldset");
    return fieldset !== null && fieldset.disabled;
  }

  // One key press, one action: a second press while the page is leaving would send the
  // same verdict twice (refused as a conflict) or skip an item unseen.
  let leaving = false;

  document.addEventListener("keydown", function (event) {
    if (leaving) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "Escape" && typing(event.target)) {
      event.target.blur();
      return;
    }
    if (typing(event.target)) return;
    const key = event.key;
    if (key === "e") {
      const field = document.querySelector("[data-edit], select[name=corrected_label]");
      if (field && !fieldsetDisabled()) {
        event.preventDefault();
        field.focus();
      }
      return;
    }
    if (/^[1-5]$/.test(key)) {
      const radio = document.querySelector('input[name=rating][value="' + key + '"]');
      if (radio && !fieldsetDisabled()) {
        radio.checked = true;
        event.preventDefault();
      }
      return;
    }
    const control = document.querySelector('[data-key="' + CSS.escape(key) + '"]');
    if (control === null || control.disabled || (control.form && fieldsetDisabled())) return;
    event.preventDefault();
    leaving = true;
    control.click();
  });
})();
