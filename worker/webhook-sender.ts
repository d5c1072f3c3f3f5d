import type { Logger } from '../server/logger';
import { systemActor } from '../server/policy';
import type { WebhooksService } from '../server/services/webhooks';


// The worker's webhook sender: passes of `WebhooksService.sendDue` while deliveries are due. Woken by the relay
// when its `webhooks` consumer has committed new deliveries (in this process), and by a poll for retries coming due
// and for deliveries another process wrote (a redelivery by an admin). Each pass is its own short transactions:
// the HTTP calls never run inside the relay's transaction.
export class WebhookSender {

    private running: Promise<void> | undefined;
    private again = false;
    private poller: NodeJS.Timeout | undefined;

    constructor(private readonly deps: { webhooks: WebhooksService; logger?: Logger | undefined; pollMs?: number }) { }

    start(): void {

        this.poller = setInterval(() => this.wake(), this.deps.pollMs ?? 1000);
        this.wake();
    }

    wake(): void {

        if (this.running) {
            this.again = true;
            return;
        }

        this.running = this.run().finally(() => (this.running = undefined));
    }

    // Sends everything due now (tests and the bench call it)
    async drain(): Promise<void> {

        await this.running;
        while (await this.deps.webhooks.sendDue(systemActor)) { }
    }

    async stop(): Promise<void> {

        clearInterval(this.poller);
        this.poller = undefined;
        await this.running;
    }

    private async run(): Promise<void> {

        do {
            this.again = false;
            try {
                while (await this.deps.webhooks.sendDue(systemActor)) { }
            }
            catch (err) {
                this.deps.logger?.warn({ err: (err as Error).message }, 'webhook sender pass failed');
                return;                                             // the poll tries again
            }
        }
        while (this.again && this.poller);
    }
}
