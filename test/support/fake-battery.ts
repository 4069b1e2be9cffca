/**
 * A scripted BatteryManager (the Battery Status API's one object per page) for web unit tests;
 * `unplug()` is the machine going on battery, `added` counts the listeners ever added.
 */
export class FakeBattery extends EventTarget {
  charging = true;
  level = 1;
  added = 0;
  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: AddEventListenerOptions | boolean,
  ): void {
    this.added++;
    super.addEventListener(type, listener, options);
  }
  unplug(): void {
    this.charging = false;
    this.dispatchEvent(new Event("chargingchange"));
  }
}
