import path from "path"

interface RepoEnvModule {
  /** The environment of a process the repository starts: base, then extra, then the repository's settings. */
  repoEnv(extra?: Record<string, string>, base?: NodeJS.ProcessEnv): NodeJS.ProcessEnv
  /** The variables the repository sets in every process it runs or starts (XDG_CONFIG_HOME, ...). */
  repoSettings(): Record<string, string>
}

// Plain CommonJS shared with the scripts and jest.config.js; typed here instead of allowJs.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const repoEnvModule: RepoEnvModule = require(path.resolve(__dirname, "../../scripts/lib/repo-env.js"))

export const { repoEnv, repoSettings } = repoEnvModule
