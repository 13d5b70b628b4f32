// Waiting for a condition the console reaches in its own time (an event, a reconnect, a job's step): re-checked at a
// short interval, and at once on every change the estate monitor announces when one is given, until a deadline; then
// a failure that says what was waited for. Never a fixed sleep.
using QubesWeb.Services.Estate;

namespace QubesWeb.Tests.Shared;

public static class Eventually
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    /// <summary>How often a condition is re-checked.</summary>
    public static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(50);

    /// <summary>How often, when the estate monitor's changes wake the wait as well: only a fallback then.</summary>
    public static readonly TimeSpan SignalledPoll = TimeSpan.FromMilliseconds(100);

    public static Task UntilAsync(Func<bool> condition, string what, TimeSpan? timeout = null, Func<string>? detail = null) =>
        UntilAsync(null, () => Task.FromResult(condition()), what, timeout, detail);

    public static Task UntilAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null, Func<string>? detail = null) =>
        UntilAsync(null, condition, what, timeout, detail);

    public static Task UntilAsync(EstateMonitor? estate, Func<bool> condition, string what, TimeSpan? timeout = null) =>
        UntilAsync(estate, () => Task.FromResult(condition()), what, timeout);

    /// <summary>
    /// Returns once <paramref name="condition"/> holds; throws a <see cref="TimeoutException"/> naming
    /// <paramref name="what"/> (and <paramref name="detail"/>, read then) if it still does not at the deadline.
    /// </summary>
    public static async Task UntilAsync(EstateMonitor? estate, Func<Task<bool>> condition, string what, TimeSpan? timeout = null,
        Func<string>? detail = null)
    {
        var limit = timeout ?? DefaultTimeout;
        if (!await WithinAsync(estate, condition, limit))
            throw new TimeoutException($"Timed out after {limit.TotalSeconds:0.#} s waiting for: {what}" + (detail is null ? "" : $"; {detail()}"));
    }

    /// <summary>Whether <paramref name="condition"/> came to hold within <paramref name="timeout"/>, for a caller that reports it itself.</summary>
    public static Task<bool> WithinAsync(Func<bool> condition, TimeSpan timeout) =>
        WithinAsync(null, () => Task.FromResult(condition()), timeout);

    public static async Task<bool> WithinAsync(EstateMonitor? estate, Func<Task<bool>> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        var poll = estate is null ? Poll : SignalledPoll;
        using var signal = new SemaphoreSlim(0);
        void OnChanged() => signal.Release();
        if (estate is not null) estate.Changed += OnChanged;
        try
        {
            while (true)
            {
                if (await condition()) return true;
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero) return false;
                await signal.WaitAsync(left < poll ? left : poll);
            }
        }
        finally
        {
            if (estate is not null) estate.Changed -= OnChanged;
        }
    }
}
