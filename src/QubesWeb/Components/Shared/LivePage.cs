using Microsoft.AspNetCore.Components;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Jobs;

namespace QubesWeb.Components.Shared;

/// <summary>
/// A page kept live by pushes from the singleton notifiers (libvirt events, job changes), never by polling. Bursts
/// of events coalesce into one reload; the subscription ends with the circuit.
/// </summary>
public abstract class LivePage : ComponentBase, IDisposable
{
    [Inject] protected EstateMonitor Estate { get; set; } = null!;
    [Inject] protected JobEngine Jobs { get; set; } = null!;

    private int _pending;

    protected abstract Task LoadAsync();

    protected override async Task OnInitializedAsync()
    {
        Estate.Changed += OnPush;
        Jobs.JobChanged += OnJobPush;
        await LoadAsync();
    }

    private void OnJobPush(long _) => OnPush();

    private void OnPush()
    {
        if (Interlocked.Exchange(ref _pending, 1) == 1) return;
        _ = InvokeAsync(async () =>
        {
            Volatile.Write(ref _pending, 0);
            try
            {
                await LoadAsync();
                StateHasChanged();
            }
            catch (ObjectDisposedException)
            {
                // The circuit went away between the push and the reload.
            }
        });
    }

    public virtual void Dispose()
    {
        Estate.Changed -= OnPush;
        Jobs.JobChanged -= OnJobPush;
        GC.SuppressFinalize(this);
    }
}
