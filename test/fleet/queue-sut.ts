/** A system under test with a known service-time distribution: a FIFO queue in front of `servers` workers, on a timeline. */
import type { Query, SystemUnderTest } from '../../runtime/fleet/loadgen.js';
import type { Timeline } from '../../runtime/fleet/timeline.js';

export class QueueSut implements SystemUnderTest {
  readonly #waiting: { query: Query; complete: (p?: readonly number[]) => void }[] = [];
  #busy = 0;

  /** `serviceMs(samples)`: one draw of the time a worker needs for a query of that many samples. */
  constructor(
    private readonly timeline: Timeline,
    private readonly serviceMs: (samples: number) => number,
    private readonly servers = 1,
    private readonly predict: (sample: number) => number = () => 0,
  ) {}

  issue(query: Query, complete: (predictions?: readonly number[]) => void): void {
    this.#waiting.push({ query, complete });
    this.#next();
  }

  #next(): void {
    while (this.#busy < this.servers && this.#waiting.length) {
      const { query, complete } = this.#waiting.shift()!;
      this.#busy++;
      this.timeline.at(this.timeline.now() + this.serviceMs(query.samples.length), () => {
        this.#busy--;
        complete(query.samples.map(this.predict));
        this.#next();
      });
    }
  }
}
