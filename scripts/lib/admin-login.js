"use strict"

const { httpJson, expectOk } = require("./http-json")

/**
 * Makes sure `email` can log in to the dashboard with `password`: when it
 * cannot, an existing admin (its API token) creates that user through
 * POST /admin/users, as an admin would in the dashboard's team settings.
 * Answers whether it created the user.
 */
async function ensureAdminLogin(url, { apiToken, email, password }) {
  const login = await httpJson("POST", `${url}/admin/auth`, { body: { email, password } })
  if (login.status === 200) return false
  await expectOk("create the dashboard admin", "POST", `${url}/admin/users`, {
    body: { email, password, role: "admin", first_name: "Dashboard", last_name: "Admin" },
    headers: { "x-medusa-access-token": apiToken },
  })
  return true
}

module.exports = { ensureAdminLogin }
