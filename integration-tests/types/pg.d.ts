// The subset of `pg` the helpers use (@types/pg is not a dev dependency).
declare module "pg" {
  export interface QueryResultRow {
    [column: string]: any
  }
  export interface QueryResult<R extends QueryResultRow = any> {
    rows: R[]
    rowCount: number | null
    command: string
  }
  export interface PoolConfig {
    connectionString?: string
    max?: number
    idleTimeoutMillis?: number
    allowExitOnIdle?: boolean
  }
  export class Pool {
    constructor(config?: PoolConfig)
    query<R extends QueryResultRow = any>(sql: string, params?: unknown[]): Promise<QueryResult<R>>
    end(): Promise<void>
  }
  export class Client {
    constructor(config?: { connectionString?: string })
    connect(): Promise<void>
    on(event: "error", listener: (err: Error) => void): this
    query<R extends QueryResultRow = any>(sql: string, params?: unknown[]): Promise<QueryResult<R>>
    end(): Promise<void>
  }
}
