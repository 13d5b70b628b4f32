// Waiting for a condition the console reaches by itself (an event, a reconnect): re-checked on every change the
// estate monitor announces, and at a short interval as a fallback, until a deadline. Never a fixed sleep.
using QubesWeb.Services.Estate;

namespace QubesWeb.IntegrationTests.EstateTests;

public static class Eventually
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    public static async Task UntilAsync(EstateMonitor? estate, Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        await UntilAsync(estate, () => Task.FromResult(condition()), what, timeout);
    }

    public static async Task UntilAsync(EstateMonitor? estate, Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? DefaultTimeout);
        using var signal = new SemaphoreSlim(0);
        void OnChanged() => signal.Release();
        if (estate is not null) estate.Changed += OnChanged;
        try
        {
            while (true)
            {
                if (await condition()) return;
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero) throw new TimeoutException($"Timed out waiting for: {what}");
                await signal.WaitAsync(left < TimeSpan.FromMilliseconds(100) ? left : TimeSpan.FromMilliseconds(100));
            }
        }
        finally
        {
            if (estate is not null) estate.Changed -= OnChanged;
        }
    }
}
