import { IsBoolean } from "class-validator"

export class AdminPostPaymentCollectionProviderReq {
  @IsBoolean()
  is_enabled: boolean
}
