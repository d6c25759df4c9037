/**
 * The DNS-SD side of the LAN mesh (bonjour-service over multicast-dns): advertise this node's
 * `_stockmesh._tcp` service and browse for the others. Used by site nodes (lanMesh.ts) and carriers
 * (src/relay/chained.ts).
 */
import { Bonjour, type Browser, type Service } from 'bonjour-service'
import type { Logger } from 'pino'
import type { CredentialClaims } from '../schema/credential.ts'
import { SERVICE_TYPE, txtOf } from './lanProtocol.ts'

export interface Advertised {
  /** Browses for the others (found, changed, gone); asks again every 15 s. */
  browse(on: { seen(service: Service): void; gone(service: Service): void }): void
  stop(): Promise<void>
}

/** Starts advertising `claims`' node at `port`; `mdnsInterface`: an address of the interface to use. */
export function advertise(claims: CredentialClaims, port: number, logger: Logger, mdnsInterface?: string): Advertised {
  // The options go to multicast-dns, which bonjour-service's types do not list. Its socket bound to
  // the interface's own address would receive no multicast: bound to all, sent and joined on the one.
  const bonjour = new Bonjour((mdnsInterface ? { interface: mdnsInterface, bind: '0.0.0.0' } : {}) as never, (error: unknown) => logger.warn({ err: error }, 'multicast DNS failed'))
  // Names must be unique on the LAN: the device id is. The host name too (hosts may share one).
  bonjour.publish({ name: `stockmesh ${claims.site} ${claims.device}`.slice(0, 63), type: SERVICE_TYPE, port, host: `${claims.device}.local`, txt: txtOf(claims) as unknown as Record<string, string>, disableIPv6: true })
  let browser: Browser | undefined
  let requery: ReturnType<typeof setInterval> | undefined
  return {
    browse(on) {
      browser = bonjour.find({ type: SERVICE_TYPE })
      browser.on('up', on.seen)
      browser.on('txt-update', on.seen)
      browser.on('srv-update', on.seen)
      browser.on('down', on.gone)
      // Ask again now and then: a peer that came while our query was lost is found at the next one.
      requery = setInterval(() => browser?.update(), 15_000)
      requery.unref()
    },
    stop: () =>
      new Promise<void>((resolve) => {
        clearInterval(requery)
        browser?.stop()
        bonjour.unpublishAll(() => bonjour.destroy(() => resolve()))
      }),
  }
}
