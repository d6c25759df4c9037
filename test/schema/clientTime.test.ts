import { describe, expect, it } from 'vitest'
import { checkClientTime, CLIENT_TIME_MAX_AHEAD_MS, CLIENT_TIME_MAX_BEHIND_MS, clientTimeWindow } from '../../src/schema/clientTime.ts'
import { InputError } from '../../src/schema/errors.ts'

const NOW = Date.parse('2026-03-01T12:00:00Z')

describe('checkClientTime()', () => {
  it('is a window of 400 days before and 24 hours after the node clock, both ends included', () => {
    expect(CLIENT_TIME_MAX_AHEAD_MS).toBe(24 * 3_600_000)
    expect(CLIENT_TIME_MAX_BEHIND_MS).toBe(400 * 86_400_000)
    const { earliest, latest } = clientTimeWindow(NOW)
    expect([new Date(earliest).toISOString(), new Date(latest).toISOString()]).toEqual(['2025-01-25T12:00:00.000Z', '2026-03-02T12:00:00.000Z'])
    for (const at of [earliest, NOW, latest]) expect(() => checkClientTime('at', at, NOW)).not.toThrow()
  })

  it.each([
    [NOW + CLIENT_TIME_MAX_AHEAD_MS + 1, '2026-03-02T12:00:00.001Z is after that'],
    [NOW - CLIENT_TIME_MAX_BEHIND_MS - 1, '2025-01-25T11:59:59.999Z is before that'],
    [9e15, '9000000000000000 ms, not a date is after that'],
  ])('refuses %d with an InputError naming the field and saying the window in words and ISO dates', (at, got) => {
    let error: unknown
    try {
      checkClientTime('stops.0.receivedAt', at, NOW)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(InputError)
    expect((error as InputError).field).toBe('stops.0.receivedAt')
    expect((error as InputError).message).toBe(
      "stops.0.receivedAt: must be no more than 400 days before and 24 hours after this site's clock (2026-03-01T12:00:00.000Z): " +
        `from 2025-01-25T12:00:00.000Z to 2026-03-02T12:00:00.000Z; ${got}. Check the device's date and time`,
    )
  })
})
