using Microsoft.AspNetCore.Components;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Jobs;

namespace QubesWeb.Components.Shared;

/// <summary>
/// A page kept live by pushes from the singleton notifiers (libvirt events, job changes), never by polling. Bursts
/// of pushes coalesce into one refresh; the subscription ends with the circuit. A page may refresh less than a full
/// reload for run-state or job changes by overriding <see cref="OnStatesChangedAsync"/> or <see cref="OnJobsChangedAsync"/>.
/// </summary>
public abstract class LivePage : ComponentBase, IDisposable
{
    [Inject] protected EstateMonitor Estate { get; set; } = null!;
    [Inject] protected TaskQueries Jobs { get; set; } = null!;

    private const int Full = 1, States = 2, JobsFlag = 4;
    private int _pending;

    /// <summary>Reads everything the page shows.</summary>
    protected abstract Task LoadAsync();

    /// <summary>
    /// Run states changed (and nothing else): by default a full reload and a render of the page. A page that shows
    /// states only in <see cref="LiveRow"/>s or <see cref="LiveRegion"/>s updates those and returns false: the page
    /// is then not rendered at all, which in many open tabs is most of what a libvirt event costs.
    /// </summary>
    protected virtual async Task<bool> OnStatesChangedAsync()
    {
        await LoadAsync();
        return true;
    }

    /// <summary>A job changed: by default a full reload.</summary>
    protected virtual Task OnJobsChangedAsync() => LoadAsync();

    protected override async Task OnInitializedAsync()
    {
        Estate.Changed += OnFull;
        Estate.StatesChanged += OnStates;
        Jobs.JobChanged += OnJob;
        await LoadAsync();
    }

    private void OnFull() => Push(Full);
    private void OnStates() => Push(States);
    private void OnJob(long _) => Push(JobsFlag);

    private void Push(int flag)
    {
        int before, after;
        do
        {
            before = Volatile.Read(ref _pending);
            after = before | flag;
        } while (Interlocked.CompareExchange(ref _pending, after, before) != before);
        if (before != 0) return; // a refresh is already scheduled; it will see this flag
        // On the thread pool, never inline: the pushes come on libvirt's one event thread, and InvokeAsync runs the
        // work right there when the circuit is idle, so with many tabs open that thread would render every circuit
        // in turn before it could deliver the next event. Meanwhile later pushes fold into this refresh.
        _ = Task.Run(() => InvokeAsync(async () =>
        {
            var flags = Interlocked.Exchange(ref _pending, 0);
            try
            {
                var render = true;
                if ((flags & Full) != 0) await LoadAsync();
                else
                {
                    if ((flags & States) != 0) render = await OnStatesChangedAsync();
                    if ((flags & JobsFlag) != 0)
                    {
                        await OnJobsChangedAsync();
                        render = true;
                    }
                }
                if (render) StateHasChanged();
            }
            catch (ObjectDisposedException)
            {
                // The circuit went away between the push and the refresh.
            }
        }));
    }

    public virtual void Dispose()
    {
        Estate.Changed -= OnFull;
        Estate.StatesChanged -= OnStates;
        Jobs.JobChanged -= OnJob;
        GC.SuppressFinalize(this);
    }
}
