import type { SettingConfig, SettingProps } from "@medusajs/admin"
import { Container, Heading, Table, Text } from "@medusajs/ui"
import { useAdminCustomQuery } from "medusa-react"
import { Link } from "react-router-dom"
import { errorMessage } from "../../components/format"
import { ProviderRow } from "../../components/provider-row"
import type { ProvidersRes } from "../../components/types"

// Medusa's extension loader checks this file statically: the default export
// must be a const arrow function returning JSX, and `config` a literal object.
const PaymentCollectionsSettingsPage = ({ notify }: SettingProps) => {
  const { data, isLoading, isError, error, refetch } = useAdminCustomQuery<
    Record<string, never>,
    ProvidersRes
  >("/payment-collections/providers", ["payment-collection-providers"])
  const providers = data?.providers ?? []

  return (
    <div className="flex flex-col gap-y-4">
      <Link to="/a/settings" className="text-ui-fg-subtle hover:text-ui-fg-base txt-compact-small">
        ← Back to settings
      </Link>
      <Container className="flex flex-col gap-y-4" data-testid="payment-collections-settings">
        <div>
          <Heading level="h1">Payment collections</Heading>
          <Text size="small" className="text-ui-fg-subtle">
            Which installed payment providers shoppers may use to pay order edits. A provider must
            also be enabled in the collection&apos;s region. A change applies to the next request.
          </Text>
        </div>
        {isLoading ? (
          <Text size="small">Loading providers…</Text>
        ) : isError ? (
          <Text size="small" className="text-ui-fg-error" role="alert">
            The payment providers could not be loaded: {errorMessage(error)}
          </Text>
        ) : providers.length === 0 ? (
          <Text size="small">No payment provider is installed.</Text>
        ) : (
          <Table>
            <Table.Header>
              <Table.Row>
                <Table.HeaderCell>Provider</Table.HeaderCell>
                <Table.HeaderCell>Payment collections</Table.HeaderCell>
                <Table.HeaderCell>Enabled in regions</Table.HeaderCell>
              </Table.Row>
            </Table.Header>
            <Table.Body>
              {providers.map((provider) => (
                <ProviderRow
                  key={provider.id}
                  provider={provider}
                  notify={notify}
                  onSettled={() => void refetch()}
                />
              ))}
            </Table.Body>
          </Table>
        )}
      </Container>
    </div>
  )
}

export const config: SettingConfig = {
  card: {
    label: "Payment collections",
    description: "Switch payment providers on or off for paying order edits",
  },
}

export default PaymentCollectionsSettingsPage
