using Microsoft.Extensions.Options;

namespace QubesWeb.Hosting.SignIn;

/// <summary>
/// Failed sign-ins in the last minute, all clients together: on loopback every client has the same address, so a
/// per-address limit would limit nothing. Past the limit every attempt is refused unchecked until the oldest failure
/// is a minute old, so a guesser gets no answer at all.
/// </summary>
public sealed class FailedSignIns(IOptions<SignInOptions> options, TimeProvider? time = null)
{
    private static readonly TimeSpan Window = TimeSpan.FromMinutes(1);
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly int _limit = Math.Max(1, options.Value.FailedAttemptsPerMinute);
    private readonly Queue<DateTimeOffset> _failures = new();
    private readonly Lock _lock = new();

    /// <summary>How long until another attempt is heard; zero when one may be made now.</summary>
    public TimeSpan RetryAfter()
    {
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            while (_failures.Count > 0 && now - _failures.Peek() >= Window) _failures.Dequeue();
            return _failures.Count < _limit ? TimeSpan.Zero : _failures.Peek() + Window - now;
        }
    }

    public void Record()
    {
        var now = _time.GetUtcNow();
        lock (_lock) _failures.Enqueue(now);
    }
}
