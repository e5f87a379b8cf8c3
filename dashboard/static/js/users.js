// User management (admins only): who may log in, and with which role.

import { get, post, patch, del } from "./api.js";
import { t, roleLabel } from "./i18n.js";
import { state, on } from "./state.js";
import { el, data, clear } from "./util.js";
import { select, showError, toast } from "./ui.js";
import { mountHouseholds, loadHouseholds } from "./households.js";

const ROLES = ["viewer", "operator", "admin"];
let root;
let listBox;

export function mountUsers(section) {
  root = section;
  clear(root);
  const user = el("input", { id: "nu-username", name: "username", required: true, autocomplete: "off", autocapitalize: "none", pattern: "[A-Za-z0-9._\\-]{2,64}" });
  const name = el("input", { id: "nu-display", name: "display_name", autocomplete: "off" });
  const role = select(ROLES.map((r) => [r, `role_${r}`]), { id: "nu-role", name: "role" });
  const pass = el("input", { id: "nu-password", name: "password", type: "password", required: true, minlength: "8", autocomplete: "new-password" });
  const form = el("form.card.action-card", { id: "user-form" },
    el("h2", { "data-i18n": "user_add" }, t("user_add")),
    labelled("nu-username", "username", user), labelled("nu-display", "display_name", name),
    labelled("nu-role", "role", role), labelled("nu-password", "password_new", pass),
    el("button.btn.btn-primary", { type: "submit", "data-i18n": "user_create" }, t("user_create")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!form.reportValidity()) return;
    try {
      await post("/users", { username: user.value.trim(), display_name: name.value.trim() || user.value.trim(), role: role.value, password: pass.value });
      toast(t("done_user_create", { name: user.value.trim() }));
      form.reset();
      load();
    } catch (err) {
      showError(err);
    }
  });
  root.append(el("div.view-head", {}, el("h1", { "data-i18n": "users_title" }, t("users_title"))),
    (listBox = el("div", { id: "user-list" })), form);
  mountHouseholds(root);
  on("lang", () => !root.hidden && load());
}

function labelled(id, key, control) {
  return el("div.field", {}, el("label", { for: id, "data-i18n": key }, t(key)), control);
}

export async function load() {
  if (!listBox) return;
  try {
    const users = await get("/users");
    render(users || []);
    loadHouseholds();
  } catch (err) {
    showError(err);
  }
}

function render(users) {
  clear(listBox);
  const head = el("tr", {}, ["username", "display_name", "role", "col_actions"].map((c) => el("th", { scope: "col" }, t(c))));
  const body = el("tbody", {});
  for (const u of users) {
    const self = state.user && u.username === state.user.username;
    const roleSel = select(ROLES.map((r) => [r, `role_${r}`]), { "aria-label": t("role_of", { name: u.username }) });
    roleSel.value = u.role;
    roleSel.disabled = self; // an admin cannot demote themself out of the last admin seat by accident
    roleSel.addEventListener("change", async () => {
      try {
        // The role this page showed: if another admin changed it meanwhile, 409 says who.
        await patch(`/users/${encodeURIComponent(u.username)}`, { role: roleSel.value, expected_role: u.role });
        u.role = roleSel.value;
        toast(t("done_user_role", { name: u.username, role: roleLabel(roleSel.value) }));
      } catch (err) {
        roleSel.value = u.role;
        showError(err);
        if (err && err.status === 409) load(); // show the users as they are now
      }
    });
    const pw = el("button.btn.btn-small.btn-ghost", { type: "button" }, t("user_reset_password"));
    pw.addEventListener("click", async () => {
      const fresh = randomPassword();
      try {
        await patch(`/users/${encodeURIComponent(u.username)}`, { password: fresh });
        toast(t("done_user_password", { name: u.username, password: fresh }));
      } catch (err) {
        showError(err);
      }
    });
    const rm = el("button.btn.btn-small.btn-danger", { type: "button", disabled: self }, t("user_delete"));
    let armed = null;
    rm.addEventListener("click", async () => {
      if (!armed) {
        rm.textContent = t("user_delete_confirm");
        armed = setTimeout(() => {
          armed = null;
          rm.textContent = t("user_delete");
        }, 5000);
        return;
      }
      clearTimeout(armed);
      try {
        await del(`/users/${encodeURIComponent(u.username)}`);
        toast(t("done_user_delete", { name: u.username }));
        load();
      } catch (err) {
        showError(err);
      }
    });
    body.append(el("tr", { "data-user": u.username },
      el("th", { scope: "row", "data-label": t("username") }, data(u.username)),
      el("td", { "data-label": t("display_name") }, data(u.display_name || "")),
      el("td", { "data-label": t("role") }, roleSel),
      el("td.row-actions", { "data-label": t("col_actions") }, el("div.btns", {}, pw, rm))));
  }
  listBox.append(el("div.table-wrap", {}, el("table.table.table-cards", {}, el("thead", {}, head), body)));
}

function randomPassword() {
  const abc = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  const bytes = crypto.getRandomValues(new Uint8Array(14));
  return [...bytes].map((b) => abc[b % abc.length]).join("");
}
