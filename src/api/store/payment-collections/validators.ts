import { Type } from "class-transformer"
import {
  ArrayMaxSize,
  ArrayNotEmpty,
  ArrayUnique,
  IsArray,
  IsInt,
  IsNotEmpty,
  IsOptional,
  IsString,
  Max,
  MaxLength,
  Min,
  ValidateNested,
} from "class-validator"
import { FindParams } from "@medusajs/medusa"

/** Longest id the plugin accepts; Medusa's ids are about 30 characters. */
export const MAX_ID_LENGTH = 255
/** Most sessions one batch may list. */
export const MAX_BATCH_SESSIONS = 50
/** The `amount` columns are PostgreSQL `integer`. */
export const MAX_AMOUNT = 2_147_483_647

export class StorePaymentCollectionSessionsReq {
  @IsString()
  @IsNotEmpty()
  @MaxLength(MAX_ID_LENGTH)
  provider_id: string
}

export class StorePostPaymentCollectionsSessionsReq {
  @IsString()
  @IsNotEmpty()
  @MaxLength(MAX_ID_LENGTH)
  provider_id: string

  @IsInt()
  @Min(1)
  @Max(MAX_AMOUNT)
  amount: number

  @IsOptional()
  @IsString()
  @IsNotEmpty()
  @MaxLength(MAX_ID_LENGTH)
  session_id?: string
}

export class StorePostPaymentCollectionsBatchSessionsReq {
  @IsArray()
  @ArrayNotEmpty()
  @ArrayMaxSize(MAX_BATCH_SESSIONS)
  @ValidateNested({ each: true })
  @Type(() => StorePostPaymentCollectionsSessionsReq)
  sessions: StorePostPaymentCollectionsSessionsReq[]
}

export class StorePostPaymentCollectionsBatchSessionsAuthorizeReq {
  @IsArray()
  @ArrayNotEmpty()
  @ArrayMaxSize(MAX_BATCH_SESSIONS)
  @ArrayUnique()
  @IsString({ each: true })
  @IsNotEmpty({ each: true })
  @MaxLength(MAX_ID_LENGTH, { each: true })
  session_ids: string[]
}

export class StoreGetPaymentCollectionsParams extends FindParams {}
