import { Type } from "class-transformer"
import { IsBoolean, IsIn, IsInt, IsOptional, IsString, Max, MaxLength, Min } from "class-validator"

export class AdminPostPaymentCollectionProviderReq {
  @IsBoolean()
  is_enabled: boolean
}

export class AdminGetPaymentCollectionAttemptsParams {
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(100)
  limit: number = 20

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  @Max(1_000_000)
  offset: number = 0
}

/** Every state an attempt can be in (journal/attempt-types.ts). */
const ATTEMPT_STATES = [
  "started", "answered", "uncertain", "needs_attention", "committed", "undone", "adopted", "failed", "resolved",
]

export class AdminGetPaymentCollectionAttemptsByStateParams extends AdminGetPaymentCollectionAttemptsParams {
  /** What a person must look at, unless another state is asked for. */
  @IsOptional()
  @IsIn(ATTEMPT_STATES)
  state: string = "needs_attention"
}

export class AdminPostPaymentCollectionAttemptResolveReq {
  @IsOptional()
  @IsString()
  @MaxLength(1000)
  note?: string
}
