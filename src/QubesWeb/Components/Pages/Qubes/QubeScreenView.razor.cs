using Microsoft.AspNetCore.Components;
using Microsoft.JSInterop;
using QubesWeb.Services.Consoles;

namespace QubesWeb.Components.Pages.Qubes;

/// <summary>
/// A running qube's graphical console (noVNC over the console's own socket). The console page shows it only while the
/// qube runs on a hypervisor that offers screens, keyed by the qube's name: another qube's screen is another instance.
/// </summary>
public partial class QubeScreenView : ComponentBase, IAsyncDisposable
{
    [Inject] private IJSRuntime JS { get; set; } = null!;

    /// <summary>The qube whose screen this shows.</summary>
    [Parameter, EditorRequired] public string Name { get; set; } = "";

    private ElementReference _display;
    private IJSObjectReference? _module;
    private IJSObjectReference? _screen;
    private DotNetObjectReference<QubeScreenView>? _self;
    private QubeConsole.Connection _connection = QubeConsole.Connection.Connecting;
    private string? _closedReason;
    private bool _fit = true;

    protected override async Task OnAfterRenderAsync(bool firstRender)
    {
        if (firstRender) await ConnectAsync(force: false);
    }

    /// <summary>Opens the display on the qube's screen socket; <paramref name="force"/> takes the console over.</summary>
    private async Task ConnectAsync(bool force)
    {
        await CloseScreenAsync();
        _connection = QubeConsole.Connection.Connecting;
        _closedReason = null;
        try
        {
            _module ??= await JS.InvokeAsync<IJSObjectReference>("import", "./console/screen.js");
            _self ??= DotNetObjectReference.Create(this);
            _screen = await _module.InvokeAsync<IJSObjectReference>("open", _display, GraphicalConsoles.SocketPath(Name), force, _fit, _self);
        }
        catch (JSDisconnectedException)
        {
            // The tab went away meanwhile.
        }
        StateHasChanged();
    }

    private Task TakeOverAsync() => ConnectAsync(force: true);

    /// <summary>The socket is open (the relay may still say it is busy or ended, in its close).</summary>
    [JSInvokable]
    public Task OnConsoleOpened() => InvokeAsync(() =>
    {
        if (_connection == QubeConsole.Connection.Connecting) _connection = QubeConsole.Connection.Open;
        StateHasChanged();
    });

    /// <summary>The socket closed: a <see cref="ConsoleClose"/> code and the relay's reason, or the browser's own.</summary>
    [JSInvokable]
    public Task OnConsoleClosed(int code, string reason) => InvokeAsync(() =>
    {
        (_connection, _closedReason) = QubeConsole.Closed(Name, code, reason);
        StateHasChanged();
    });

    private async Task SetFitAsync(bool fit)
    {
        _fit = fit;
        await CallAsync("setFit", fit);
    }

    private Task CtrlAltDelAsync() => CallAsync("ctrlAltDel");

    private Task FullScreenAsync() => CallAsync("fullScreen");

    private async Task CallAsync(string method, params object?[] args)
    {
        if (_screen is null) return;
        try
        {
            await _screen.InvokeVoidAsync(method, args);
        }
        catch (JSDisconnectedException)
        {
        }
    }

    private async Task CloseScreenAsync()
    {
        var screen = _screen;
        _screen = null;
        if (screen is null) return;
        try
        {
            await screen.InvokeVoidAsync("dispose");
            await screen.DisposeAsync();
        }
        catch (JSDisconnectedException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await CloseScreenAsync();
        if (_module is not null)
        {
            try { await _module.DisposeAsync(); }
            catch (JSDisconnectedException) { }
        }
        _self?.Dispose();
        GC.SuppressFinalize(this);
    }
}
