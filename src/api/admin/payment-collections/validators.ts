import { Type } from "class-transformer"
import { IsBoolean, IsInt, IsOptional, Max, Min } from "class-validator"

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
