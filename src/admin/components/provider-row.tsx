import { Switch, Table, Text } from "@medusajs/ui"
import { useAdminCustomPost } from "medusa-react"
import { useEffect, useState } from "react"
import { Link } from "react-router-dom"
import { errorMessage } from "./format"
import type { ProviderRes, ProviderView } from "./types"

type Notify = {
  success: (title: string, message: string) => void
  error: (title: string, message: string) => void
}

type Props = {
  provider: ProviderView
  notify: Notify
  /** Called with the server's answer, or with nothing after a refusal (reload the list). */
  onSettled: (answered?: ProviderView) => void
}

/** One installed provider: its switch applies at once and then shows what the server answered. */
export const ProviderRow = ({ provider, notify, onSettled }: Props) => {
  const [shown, setShown] = useState(provider.is_enabled)
  useEffect(() => setShown(provider.is_enabled), [provider.is_enabled])
  const { mutate, isLoading } = useAdminCustomPost<{ is_enabled: boolean }, ProviderRes>(
    `/payment-collections/providers/${encodeURIComponent(provider.id)}`,
    ["payment-collection-provider", provider.id]
  )

  const change = (next: boolean) => {
    setShown(next)
    mutate(
      { is_enabled: next },
      {
        onSuccess: ({ provider: answered }) => {
          setShown(answered.is_enabled)
          notify.success(
            "Payment collections",
            `${answered.id} is ${answered.is_enabled ? "on" : "off"} for payment collections`
          )
          onSettled(answered)
        },
        onError: (error) => {
          setShown(provider.is_enabled)
          notify.error(`${provider.id} was not switched ${next ? "on" : "off"}`, errorMessage(error))
          onSettled()
        },
      }
    )
  }

  const label = `Use ${provider.id} for payment collections`
  return (
    <Table.Row data-testid={`provider-row-${provider.id}`}>
      <Table.Cell>
        <Text size="small" weight="plus" className="font-mono">
          {provider.id}
        </Text>
      </Table.Cell>
      <Table.Cell>
        <div className="flex items-center gap-x-2">
          <Switch
            id={`pcp-provider-${provider.id}`}
            aria-label={label}
            title={label}
            checked={shown}
            disabled={isLoading}
            onCheckedChange={change}
          />
          <Text size="small" className="text-ui-fg-subtle">
            {shown ? "On" : "Off"}
          </Text>
        </div>
      </Table.Cell>
      <Table.Cell>
        {provider.regions.length === 0 ? (
          <Text size="small" className="text-ui-fg-subtle">
            Not enabled in any region
          </Text>
        ) : (
          <div className="flex flex-wrap gap-x-3 gap-y-1">
            {provider.regions.map((region) => (
              <Link
                key={region.id}
                to={`/a/settings/regions/${region.id}`}
                className="text-ui-fg-interactive hover:text-ui-fg-interactive-hover txt-compact-small"
              >
                {region.name}
              </Link>
            ))}
          </div>
        )}
      </Table.Cell>
    </Table.Row>
  )
}
