// Collects lifecycle events from the libvirt event thread and lets a test await a particular one.
using QubesWeb.Hypervisor.Libvirt;

namespace QubesWeb.IntegrationTests.Libvirt;

internal sealed class EventRecorder
{
    // Generous: the event thread shares 2 cores with parallel tests and the build server.
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly Lock _lock = new();
    private readonly List<DomainLifecycleEvent> _events = [];
    private readonly List<(Func<DomainLifecycleEvent, bool> Match, TaskCompletionSource<DomainLifecycleEvent> Done)> _waiters = [];

    public void Record(DomainLifecycleEvent e)
    {
        lock (_lock)
        {
            _events.Add(e);
            foreach (var waiter in _waiters.Where(w => w.Match(e)).ToList())
            {
                _waiters.Remove(waiter);
                waiter.Done.TrySetResult(e);
            }
        }
    }

    public IReadOnlyList<DomainLifecycleEvent> Events
    {
        get
        {
            lock (_lock)
            {
                return _events.ToList();
            }
        }
    }

    /// Completes with the first recorded event (past or future) that matches.
    public Task<DomainLifecycleEvent> WaitFor(Func<DomainLifecycleEvent, bool> match)
    {
        lock (_lock)
        {
            var seen = _events.FirstOrDefault(match);
            if (seen is not null)
            {
                return Task.FromResult(seen);
            }
            var done = new TaskCompletionSource<DomainLifecycleEvent>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((match, done));
            return done.Task.WaitAsync(Timeout);
        }
    }

    public Task<DomainLifecycleEvent> WaitFor(string name, DomainEventType type) =>
        WaitFor(e => e.Name == name && e.Event == type);
}
