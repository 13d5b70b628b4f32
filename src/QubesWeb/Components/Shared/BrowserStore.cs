using Microsoft.JSInterop;

namespace QubesWeb.Components.Shared;

/// <summary>
/// The browser-side helpers of wwwroot/qw.js: settings remembered per browser (dark mode, columns) and the '/'
/// shortcut. Scoped to the circuit; calls before the circuit is interactive are skipped, not failed.
/// </summary>
public sealed class BrowserStore(IJSRuntime js) : IAsyncDisposable
{
    private IJSObjectReference? _module;

    private async Task<IJSObjectReference> ModuleAsync() =>
        _module ??= await js.InvokeAsync<IJSObjectReference>("import", "./qw.js");

    public async Task<string?> LoadAsync(string key)
    {
        try { return await (await ModuleAsync()).InvokeAsync<string?>("load", key); }
        catch (JSDisconnectedException) { return null; }
        catch (InvalidOperationException) { return null; } // prerendering: no browser yet
    }

    public async Task SaveAsync(string key, string value)
    {
        try { await (await ModuleAsync()).InvokeVoidAsync("save", key, value); }
        catch (JSDisconnectedException) { }
        catch (InvalidOperationException) { }
    }

    public async Task FocusOnSlashAsync(string elementId)
    {
        try { await (await ModuleAsync()).InvokeVoidAsync("focusOnSlash", elementId); }
        catch (JSDisconnectedException) { }
        catch (InvalidOperationException) { }
    }

    public async ValueTask DisposeAsync()
    {
        if (_module is null) return;
        try { await _module.DisposeAsync(); }
        catch (JSDisconnectedException) { }
    }
}
