import crypto from "crypto"
import fs from "fs"
import path from "path"
import { Client } from "pg"
import type { Browser, BrowserContext, Page } from "playwright-core"
import { testEnv } from "./helpers/env"
import { createApi } from "./helpers/http"
import { orderEditSeed, Shop } from "./helpers/order-edit-seed"
import {
  adminHost,
  adminLogin,
  AdminHost,
  ensureChromium,
  launchChromium,
  medusaHost,
  postgres,
} from "./helpers/admin-dashboard"

// The plugin's admin dashboard extensions as a merchant gets them: the packed
// plugin (npm pack tarball) installed into a Medusa 1.20.11 backend with
// @medusajs/admin, `medusa-admin build`, `medusa start`, and Debian's Chromium
// driven through the dashboard at /app. Screenshots are saved as artifacts.

const ARTIFACTS = process.env.PCP_ARTIFACTS_DIR || path.resolve(__dirname, "../.test-data/artifacts/admin-dashboard")
const EMAIL = "merchant@pcp.test"
const PASSWORD = "dashboard-secret"
const PROVIDERS = "/admin/payment-collections/providers"

function log(message: string) {
  process.stderr.write(`[pcp-admin-dashboard] ${message}\n`)
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`

describe("Admin dashboard: the plugin's settings page and order widget in a host built from the tarball", () => {
  const specStarted = Date.now()
  let host: AdminHost
  let backend: { url: string; stop(): Promise<void> }
  let dbName: string
  let db: Client
  let browser: Browser
  let shop: Shop
  let apiToken: string
  let paid: { order: any; orderEdit: any; collection: any }
  let orderWithoutEdits: any
  let awaitingPayment: any
  const providerSecret = `pi_${crypto.randomBytes(6).toString("hex")}_secret_${crypto.randomBytes(8).toString("hex")}`
  const adminHeaders = () => ({ "x-medusa-access-token": apiToken })

  beforeAll(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true })
    const chromiumPath = ensureChromium(log)

    host = await adminHost.prepareAdminHost({ log })
    const t = host.timings
    log(
      `host ready: ${Object.entries(t)
        .map(([step, ms]) => `${step} ${seconds(ms)}`)
        .join(", ") || "everything current"} (log: ${host.logFile})`
    )

    const { baseUrl } = testEnv()
    dbName = `pcp_admin_${Date.now()}_${crypto.randomBytes(3).toString("hex")}`
    await postgres.createDatabase(baseUrl, dbName)
    const databaseUrl = postgres.databaseUrl(baseUrl, dbName)
    const pspEnv = { TEST_PAY_PSP_URL: testEnv().pspUrl }
    await medusaHost.runMigrations({ hostDir: host.dir, databaseUrl, cli: host.cli, env: pspEnv })
    backend = await medusaHost.startBackend({
      hostDir: host.dir,
      databaseUrl,
      cli: host.cli,
      env: pspEnv,
      logFile: path.join(ARTIFACTS, "backend.log"),
    })
    db = new Client({ connectionString: databaseUrl })
    await db.connect()

    apiToken = `pcp_dashboard_${crypto.randomBytes(12).toString("hex")}`
    await db.query(
      `INSERT INTO "user" (id, email, api_token, role) VALUES ('usr_pcp_dashboard_api', 'api@pcp.test', $1, 'admin')`,
      [apiToken]
    )
    await adminLogin.ensureAdminLogin(backend.url, { apiToken, email: EMAIL, password: PASSWORD })

    const { rows } = await db.query(`SELECT iso_2 FROM country WHERE region_id IS NULL ORDER BY iso_2 LIMIT 1`)
    shop = await orderEditSeed.createShop(backend.url, {
      adminHeaders: adminHeaders(),
      countryCode: rows[0].iso_2,
      name: "North Shop",
    })
    paid = await orderEditSeed.seedOrderWithPaidEdit(backend.url, shop, { pspUrl: testEnv().pspUrl, adminHeaders: adminHeaders() })
    // What a Stripe intent carries and an admin page must never show.
    for (const [table, link, column] of [
      ["payment_session", "payment_collection_sessions", "payment_session_id"],
      ["payment", "payment_collection_payments", "payment_id"],
    ]) {
      await db.query(
        `UPDATE ${table} SET data = data || jsonb_build_object('client_secret', $2::text)
          WHERE id IN (SELECT ${column} FROM ${link} WHERE payment_collection_id = $1)`,
        [paid.collection.id, providerSecret]
      )
    }
    orderWithoutEdits = await orderEditSeed.placeOrder(backend.url, shop)
    const other = await orderEditSeed.placeOrder(backend.url, shop)
    awaitingPayment = await orderEditSeed.requestOrderEdit(backend.url, shop, other.id, {
      adminHeaders: adminHeaders(),
    })

    browser = await launchChromium(chromiumPath)
    log(`ready after ${seconds(Date.now() - specStarted)}: ${backend.url}/app`)
  }, 45 * 60_000)

  afterAll(async () => {
    await browser?.close()
    await db?.end()
    await backend?.stop()
    if (dbName) await postgres.dropDatabase(testEnv().baseUrl, dbName)
    log(`spec took ${seconds(Date.now() - specStarted)}; screenshots in ${ARTIFACTS}`)
  }, 60_000)

  // ------------------------------------------------------------------ browser

  let context: BrowserContext | undefined

  afterEach(async () => {
    await context?.close()
    context = undefined
  })

  /** A new browser session, logged in through the admin API (the cookie lands in the context). */
  async function loggedInPage(): Promise<Page> {
    context = await browser.newContext({ baseURL: backend.url, viewport: { width: 1440, height: 1000 } })
    const login = await context.request.post("/admin/auth", { data: { email: EMAIL, password: PASSWORD } })
    expect(login.status()).toBe(200)
    return context.newPage()
  }

  async function openSettingsPage(page: Page) {
    await page.goto("/app/a/settings/payment-collections")
    await page.getByTestId("provider-row-test-pay").waitFor()
  }

  const providerSwitch = (page: Page, providerId: string) =>
    page.getByRole("switch", { name: `Use ${providerId} for payment collections` })

  async function openOrder(page: Page, orderId: string) {
    const answered = page.waitForResponse((r) => r.url().includes(`/admin/orders/${orderId}/payment-collections`))
    await page.goto(`/app/a/orders/${orderId}`)
    return answered
  }

  const artifact = (name: string) => path.join(ARTIFACTS, name)

  // ---------------------------------------------------------------------- tests

  it("logs in through the login form and finds the settings card under Extensions", async () => {
    context = await browser.newContext({ baseURL: backend.url, viewport: { width: 1440, height: 1000 } })
    const page = await context.newPage()

    await page.goto("/app/login")
    await page.fill('input[name="email"]', EMAIL)
    await page.fill('input[name="password"]', PASSWORD)
    await page.click('button[type="submit"]')
    await page.waitForURL(/\/app\/a\/orders/)
    await page.goto("/app/a/settings")
    const card = page.getByText("Payment collections", { exact: true })
    await card.waitFor()
    await page.getByText("Switch payment providers on or off for paying order edits").waitFor()
    await page.screenshot({ path: artifact("settings-cards.png") })
    await card.click()

    await page.waitForURL(/\/app\/a\/settings\/payment-collections$/)
    await page.getByTestId("payment-collections-settings").waitFor()
  })

  it("the settings page lists each installed provider with its switch and the regions that offer it", async () => {
    const page = await loggedInPage()

    await openSettingsPage(page)

    for (const id of ["manual", "test-pay"]) {
      const row = page.getByTestId(`provider-row-${id}`)
      await expect(providerSwitch(page, id).getAttribute("aria-checked")).resolves.toBe("true")
      const link = row.getByRole("link", { name: "North Shop" })
      await expect(link.getAttribute("href")).resolves.toBe(`/app/a/settings/regions/${shop.regionId}`)
    }
    await page.screenshot({ path: artifact("settings-page.png"), fullPage: true })
  })

  it("switching test-pay off applies at once (the store refuses it), and switching it on makes it usable again", async () => {
    const page = await loggedInPage()
    const store = createApi(backend.url)
    const createSession = () =>
      store.post(`/store/payment-collections/${awaitingPayment.payment_collection_id}/sessions`, {
        provider_id: "test-pay",
      })
    await openSettingsPage(page)

    await providerSwitch(page, "test-pay").click()

    await page.getByText("test-pay is off for payment collections").waitFor()
    await expect(providerSwitch(page, "test-pay").getAttribute("aria-checked")).resolves.toBe("false")
    await page.screenshot({ path: artifact("settings-switched-off.png"), fullPage: true })
    const refused = await createSession()
    expect(refused.status).toBe(400)
    expect(refused.body).toMatchObject({ type: "invalid_data", message: expect.stringContaining("test-pay") })
    const listed = await createApi(backend.url, adminHeaders()).get(PROVIDERS)
    expect(listed.body.providers).toContainEqual(expect.objectContaining({ id: "test-pay", is_enabled: false }))

    await providerSwitch(page, "test-pay").click()

    await page.getByText("test-pay is on for payment collections").waitFor()
    await expect(providerSwitch(page, "test-pay").getAttribute("aria-checked")).resolves.toBe("true")
    const accepted = await createSession()
    expect(accepted.status).toBe(200)
    expect(accepted.body.payment_collection.payment_sessions).toEqual([
      expect.objectContaining({ provider_id: "test-pay", amount: 4000 }),
    ])
  })

  it("a switch the server refuses shows the error in a toast and the switch goes back", async () => {
    const page = await loggedInPage()
    await openSettingsPage(page)
    // The setting's write fails in the database, as a real outage would.
    await db.query(`CREATE FUNCTION pcp_refuse_setting() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'settings are read-only'; END $$`)
    await db.query(`CREATE TRIGGER pcp_refuse_setting BEFORE INSERT OR UPDATE ON payment_collection_provider_setting
      FOR EACH ROW EXECUTE FUNCTION pcp_refuse_setting()`)
    try {
      await providerSwitch(page, "manual").click()

      await page.getByText("manual was not switched off").waitFor()
      await page.screenshot({ path: artifact("settings-refused.png"), fullPage: true })
      await expect(providerSwitch(page, "manual").getAttribute("aria-checked")).resolves.toBe("true")
      const { rows } = await db.query(`SELECT * FROM payment_collection_provider_setting WHERE provider_id = 'manual'`)
      expect(rows).toEqual([])
    } finally {
      await db.query(`DROP TRIGGER IF EXISTS pcp_refuse_setting ON payment_collection_provider_setting`)
      await db.query(`DROP FUNCTION IF EXISTS pcp_refuse_setting()`)
    }
  })

  it("the order page shows the edit's collection: status, amounts, both sessions and both payments, no provider data", async () => {
    const page = await loggedInPage()

    const answered = await openOrder(page, paid.order.id)

    expect(answered.status()).toBe(200)
    const widget = page.getByTestId("order-payment-collections")
    await widget.waitFor()
    const card = widget.getByTestId(`payment-collection-${paid.collection.id}`)
    await expect(card.textContent()).resolves.toEqual(expect.stringContaining("authorized"))
    await expect(card.textContent()).resolves.toEqual(expect.stringContaining("$40.00"))
    const sessions = await card.getByTestId("session-row").allInnerTexts()
    expect(sessions).toEqual([
      expect.stringMatching(/manual\s+\$15\.00\s+authorized/),
      expect.stringMatching(/test-pay\s+\$25\.00\s+authorized/),
    ])
    const payments = await card.getByTestId("payment-row").allInnerTexts()
    expect(payments).toEqual([expect.stringMatching(/manual\s+\$15\.00/), expect.stringMatching(/test-pay\s+\$25\.00/)])
    const html = await widget.innerHTML()
    expect(html).not.toContain(providerSecret)
    expect(html).not.toContain("client_secret")
    // Tall enough that the whole widget is on screen, under no sticky header.
    await page.setViewportSize({ width: 1440, height: 2400 })
    await widget.screenshot({ path: artifact("order-widget.png") })
  })

  it("the order widget shows the attempt log of the payment: every provider call, newest first", async () => {
    const page = await loggedInPage()
    const api = createApi(backend.url, adminHeaders())
    const expected = (await api.get(`/admin/payment-collections/${paid.collection.id}/attempts?limit=10`)).body
    const calls = expected.attempts.map((a: any) => `${a.provider_id} ${a.operation}`)
    expect(calls).toEqual(
      expect.arrayContaining(["manual initiate", "test-pay initiate", "manual authorize", "test-pay authorize"])
    )

    await openOrder(page, paid.order.id)

    const rows = page.getByTestId(`attempt-log-${paid.collection.id}`).getByTestId("attempt-row")
    await rows.first().waitFor()
    const shown = await rows.allInnerTexts()
    expect(shown).toHaveLength(expected.attempts.length)
    expected.attempts.forEach((attempt: any, i: number) => {
      expect(shown[i]).toContain(attempt.provider_id)
      expect(shown[i]).toContain(attempt.operation)
    })
  })

  it("an order without payment collections shows no widget", async () => {
    const page = await loggedInPage()

    const answered = await openOrder(page, orderWithoutEdits.id)

    expect(answered.status()).toBe(200)
    expect(await answered.json()).toEqual({ payment_collections: [] })
    await page.getByText("Raw order").waitFor()
    await expect(page.getByTestId("order-payment-collections").count()).resolves.toBe(0)
    await expect(page.getByTestId("order-payment-collections-error").count()).resolves.toBe(0)
  })

  it("a collection awaiting payment shows its amount due and no sessions yet", async () => {
    const page = await loggedInPage()
    const order = awaitingPayment.order_id

    await openOrder(page, order)

    const card = page.getByTestId(`payment-collection-${awaitingPayment.payment_collection_id}`)
    await card.waitFor()
    await expect(card.textContent()).resolves.toEqual(expect.stringContaining("$40.00"))
  })

  it("when the widget's request fails, the order page says so instead of showing nothing", async () => {
    const page = await loggedInPage()
    // A real server error: the attempt log's table is briefly unreadable.
    await db.query(`ALTER TABLE payment_collection_attempt RENAME TO payment_collection_attempt_away`)
    try {
      await openOrder(page, paid.order.id)

      const message = page.getByTestId("order-payment-collections-error")
      await message.waitFor()
      await expect(message.textContent()).resolves.toEqual(
        expect.stringContaining("The payment collections of this order could not be loaded")
      )
      await message.screenshot({ path: artifact("order-widget-error.png") })
    } finally {
      await db.query(`ALTER TABLE payment_collection_attempt_away RENAME TO payment_collection_attempt`)
    }
  })

  it("the widget's and the settings page's routes answer 401 to a browser without an admin session", async () => {
    const page = await loggedInPage()
    await page.goto("/app/login")
    const anonymous = createApi(backend.url)

    for (const route of [`/admin/orders/${paid.order.id}/payment-collections`, PROVIDERS]) {
      expect((await context!.request.get(route)).status()).toBe(200)
      const res = await anonymous.get(route)
      expect(res.status).toBe(401)
    }
    // Medusa's session middleware saves the session again at the end of every
    // request (express-session `resave`), so a dashboard request still in
    // flight would bring it back after the logout: let the page go quiet and
    // close it first.
    await page.waitForLoadState("networkidle")
    await page.close()
    await context!.request.delete("/admin/auth")
    expect((await context!.request.get(PROVIDERS)).status()).toBe(401)
  })
})
