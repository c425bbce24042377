import { KeyedQueue } from "../keyed-queue"

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe("KeyedQueue", () => {
  it("runs tasks of one key one at a time, in arrival order", async () => {
    const queue = new KeyedQueue()
    const events: string[] = []
    let running = 0
    let maxRunning = 0
    const task = (name: string) => async () => {
      running++
      maxRunning = Math.max(maxRunning, running)
      events.push(`start ${name}`)
      await sleep(5)
      events.push(`end ${name}`)
      running--
      return name
    }
    const results = await Promise.all(
      ["a", "b", "c"].map((n) => queue.run("k", 1000, task(n), () => new Error("timeout")))
    )
    expect(results).toEqual(["a", "b", "c"])
    expect(maxRunning).toBe(1)
    expect(events).toEqual(["start a", "end a", "start b", "end b", "start c", "end c"])
    expect(queue.size).toBe(0)
  })

  it("runs tasks of different keys side by side", async () => {
    const queue = new KeyedQueue()
    let running = 0
    let maxRunning = 0
    const task = async () => {
      running++
      maxRunning = Math.max(maxRunning, running)
      await sleep(10)
      running--
    }
    await Promise.all(
      ["a", "b", "c"].map((k) => queue.run(k, 1000, task, () => new Error("timeout")))
    )
    expect(maxRunning).toBe(3)
  })

  it("gives up waiting after the timeout and lets the queue move on", async () => {
    const queue = new KeyedQueue()
    const slow = queue.run("k", 1000, () => sleep(50).then(() => "slow"), () => new Error("t"))
    const impatient = queue.run("k", 10, async () => "never", () => new Error("busy"))
    const next = queue.run("k", 1000, async () => "next", () => new Error("t"))
    await expect(impatient).rejects.toThrow("busy")
    await expect(slow).resolves.toBe("slow")
    await expect(next).resolves.toBe("next")
    expect(queue.size).toBe(0)
  })

  it("keeps going after a task fails", async () => {
    const queue = new KeyedQueue()
    const failing = queue.run("k", 1000, async () => {
      throw new Error("boom")
    }, () => new Error("t"))
    const after = queue.run("k", 1000, async () => "ok", () => new Error("t"))
    await expect(failing).rejects.toThrow("boom")
    await expect(after).resolves.toBe("ok")
  })

  it("keeps a key busy while its task runs, after the last waiter gave up", async () => {
    const queue = new KeyedQueue()
    let running = 0
    let overlapped = false
    const task = async () => {
      overlapped ||= running > 0
      running++
      await sleep(60)
      running--
    }
    const first = queue.run("k", 1000, task, () => new Error("t"))
    await expect(queue.run("k", 10, task, () => new Error("busy"))).rejects.toThrow("busy")
    // The first task is still running: the key is busy and a newcomer waits its turn.
    expect(queue.isBusy("k")).toBe(true)
    await queue.run("k", 1000, task, () => new Error("t"))
    await first
    expect(overlapped).toBe(false)
    await sleep(0)
    expect(queue.size).toBe(0)
  })
})
