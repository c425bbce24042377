import fs from "fs"
import path from "path"

// The layout of src/ (README, "Layout"): each folder one room with one job,
// and imports pointing only down — api → services → journal → db / providers
// → lib. Read from the files themselves, so a new arrow against the rules
// fails here before it is merged.

const SRC = path.resolve(__dirname, "..")

/** What each folder may import from the plugin's other folders. */
const MAY_IMPORT: Record<string, string[]> = {
  lib: [],
  types: ["lib"],
  rules: ["lib"],
  db: ["lib", "types"],
  providers: ["lib", "types"],
  journal: ["db", "providers", "rules", "lib", "types"],
  services: ["journal", "db", "providers", "rules", "lib", "types"],
  api: ["services", "lib", "types"],
  loaders: ["services", "lib", "types"],
  models: [],
  migrations: [],
  subscribers: ["services", "lib", "types"],
}

const MAX_LINES = 350

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) {
      return entry.name === "__tests__" || entry.name === "admin" ? [] : sourceFiles(full)
    }
    return /\.tsx?$/.test(entry.name) ? [full] : []
  })
}

function folderOf(file: string): string {
  return path.relative(SRC, file).split(path.sep)[0]
}

function relativeImports(file: string): string[] {
  const text = fs.readFileSync(file, "utf8")
  return [...text.matchAll(/(?:from|import)\s*\(?\s*"(\.[^"]+)"/g)].map((m) => m[1])
}

const files = sourceFiles(SRC).filter((file) => path.dirname(file) !== SRC)

describe("the layout of src/", () => {
  it("has a rule for every folder", () => {
    const folders = new Set(files.map(folderOf))
    expect([...folders].filter((folder) => !(folder in MAY_IMPORT))).toEqual([])
  })

  it.each(files.map((file) => [path.relative(SRC, file), file]))("%s imports only what its folder may", (_name, file) => {
    const from = folderOf(file)
    const wrong = relativeImports(file)
      .map((spec) => folderOf(path.resolve(path.dirname(file), spec)))
      .filter((to) => to !== from && !MAY_IMPORT[from].includes(to))
    expect(wrong).toEqual([])
  })

  it(`has no source file over ${MAX_LINES} lines`, () => {
    const long = files
      .map((file) => [path.relative(SRC, file), fs.readFileSync(file, "utf8").split("\n").length] as const)
      .filter(([, lines]) => lines > MAX_LINES)
    expect(long).toEqual([])
  })
})
