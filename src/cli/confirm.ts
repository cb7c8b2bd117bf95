// Confirmation of a risky action. The rules: --yes skips the question; under --json or without
// a terminal nobody can answer, so the command refuses (exit 2) and says --yes is needed; at a
// terminal a prompts confirmation names the risk and defaults to no.
import prompts from 'prompts'
import { refused } from './failure.js'

export interface ConfirmOptions {
  /** What is about to happen and what can go wrong, in a sentence or two. */
  risk: string
  /** The yes/no question, e.g. "Force b to take over?" */
  question: string
  yes: boolean
  json: boolean
  /** Both stdin and stdout are terminals (default: read from the process). */
  interactive?: boolean
  /** The command line that skips the question, for the refusal message. */
  withYes: string
  /** Where the risk is shown (default stderr, so stdout stays the result). */
  write?: (text: string) => void
  /** The question itself (tests inject an answer). */
  ask?: (question: string) => Promise<boolean | undefined>
}

export type ConfirmResult = 'confirmed' | 'assumed-yes'

export function isInteractive(): boolean {
  return process.stdin.isTTY === true && process.stdout.isTTY === true
}

async function askWithPrompts(question: string): Promise<boolean | undefined> {
  const answer = await prompts({ type: 'confirm', name: 'ok', message: question, initial: false, stdout: process.stderr })
  return typeof answer.ok === 'boolean' ? answer.ok : undefined // Ctrl-C/Esc: no answer
}

/** Resolves when the action may go ahead; throws a refusal (exit 2) otherwise. */
export async function confirmRisk(o: ConfirmOptions): Promise<ConfirmResult> {
  if (o.yes) return 'assumed-yes'
  const interactive = o.interactive ?? isInteractive()
  if (o.json || !interactive) {
    const why = o.json ? 'with --json nothing is asked' : 'there is no terminal to ask at'
    throw refused(`Not done: this needs a confirmation and ${why}. Add --yes to go ahead: ${o.withYes}\nThe risk: ${o.risk}`, 'CONFIRMATION_NEEDED')
  }
  const write = o.write ?? ((t: string) => process.stderr.write(t))
  write(`${o.risk}\n`)
  const ok = await (o.ask ?? askWithPrompts)(o.question)
  if (ok !== true) throw refused('Not confirmed: nothing was done.', 'NOT_CONFIRMED')
  return 'confirmed'
}
