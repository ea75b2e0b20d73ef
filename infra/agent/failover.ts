/**
 * The host agent's failover (agent/internal/failover): when the live instance failed its health
 * for `failover.afterSeconds`, the host switched to its warm standby by itself and stays there
 * until a deploy. The agent reports that switch (`failedOver` in its state and in a failed
 * activation's result) as "<time> to <version>: <its revisions.log outcome>".
 */

/** The failover as a refresh drift, a status problem and a failed deploy name it. */
export function failoverProblem(failedOver: string, declared: string): string {
    return `the host failed over to its warm standby by itself (${failedOver}), away from the declared ${declared}`;
}
