using System.Globalization;
using Microsoft.AspNetCore.Components;
using Microsoft.JSInterop;
using MudBlazor;
using QubesWeb.Components.Shared;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Consoles;
using QubesWeb.Services.Jobs;
using QubesWeb.Services.Qubes;

namespace QubesWeb.Components.Pages.Qubes;

public partial class QubeConsole : LivePage, IAsyncDisposable
{
    [Inject] private QubeQueries Inventory { get; set; } = null!;
    [Inject] private QubeCommands Commands { get; set; } = null!;
    [Inject] private SerialConsoles Consoles { get; set; } = null!;
    [Inject] private GraphicalConsoles Screens { get; set; } = null!;
    [Inject] private CircuitJobs MyJobs { get; set; } = null!;
    [Inject] private ISnackbar Snackbar { get; set; } = null!;
    [Inject] private IJSRuntime JS { get; set; } = null!;

    /// <summary>The qube's name, from the address.</summary>
    [Parameter] public string Name { get; set; } = "";

    /// <summary>Which console the page shows: <c>screen</c> for the graphical one, anything else the serial one.</summary>
    [SupplyParameterFromQuery(Name = "view")] public string? View { get; set; }

    /// <summary>Where the page's terminal stands with its socket.</summary>
    public enum Connection
    {
        Connecting,
        Open,
        Busy,
        Closed,
    }

    private bool _loaded;
    private Qube? _qube;
    private RunState _state;
    private bool _starting;
    private string? _pasteText;

    private ElementReference _terminal;
    private IJSObjectReference? _module;
    private IJSObjectReference? _console;
    private DotNetObjectReference<QubeConsole>? _self;
    private bool _connectOnRender = true;
    private Connection _connection = Connection.Connecting;
    private string? _closedReason;

    private bool _screenShown;

    private bool Screen => string.Equals(View, "screen", StringComparison.OrdinalIgnoreCase);

    private string PageTitleText => _qube?.Class == QubeClass.AdminVM ? "dom0 · QubesWeb"
        : Screen ? $"[{Name}] screen · QubesWeb" : $"[{Name}] serial console · QubesWeb";

    /// <summary>The address of a qube's serial console page, or of its screen.</summary>
    public static string ViewHref(string name, bool screen) => $"/qubes/{Uri.EscapeDataString(name)}/console{(screen ? "?view=screen" : "")}";

    /// <summary>Whether the page shows a terminal now (the serial view of a running qube on a hypervisor with consoles).</summary>
    private bool ShowsTerminal => !Screen && _qube is { Class: not QubeClass.AdminVM } && Consoles.Offered && _state == RunState.Running;

    private string NotRunningText => _state switch
    {
        RunState.Halted => $"{Name} is halted: start it to use its console.",
        RunState.Paused => $"{Name} is paused: resume it on its page to use its console.",
        RunState.Crashed => $"{Name} has crashed.",
        _ => $"{Name} is {_state.ToString().ToLowerInvariant()}: its console opens once it runs.",
    };

    protected override async Task OnParametersSetAsync()
    {
        if (_qube is not null && _qube.Name == Name && _screenShown != Screen)
        {
            // From the screen back to the terminal (or the other way): a fresh terminal, as a new window would be.
            _screenShown = Screen;
            _connectOnRender = true;
            _connection = Connection.Connecting;
            return;
        }
        _screenShown = Screen;
        if (_qube is null || _qube.Name == Name) return;
        // Another qube's console in the same page: the open terminal is the old qube's, and must never be shown
        // framed as the new one's. It goes before the new one is read.
        await CloseConsoleAsync();
        _state = RunState.Unknown;
        _connectOnRender = true;
        _connection = Connection.Connecting;
        _pasteText = null;
        await LoadAsync();
    }

    protected override async Task LoadAsync()
    {
        _qube = await Inventory.FindAsync(Name);
        var before = _state;
        _state = _qube is null ? RunState.Unknown : Estate.StateOf(_qube);
        // Started again after it stopped: a fresh console, as a new window would be.
        if (_state == RunState.Running && before != RunState.Running) _connectOnRender = true;
        if (_state != RunState.Running) _starting = false;
        _loaded = true;
    }

    protected override async Task OnAfterRenderAsync(bool firstRender)
    {
        if (ShowsTerminal && _connectOnRender)
        {
            _connectOnRender = false;
            await ConnectAsync(force: false);
        }
        else if (!ShowsTerminal && _console is not null)
        {
            await CloseConsoleAsync();
        }
    }

    /// <summary>Opens the terminal on the qube's console socket; <paramref name="force"/> takes the console over.</summary>
    private async Task ConnectAsync(bool force)
    {
        await CloseConsoleAsync();
        _connection = Connection.Connecting;
        _closedReason = null;
        try
        {
            _module ??= await JS.InvokeAsync<IJSObjectReference>("import", "./console/serial.js");
            _self ??= DotNetObjectReference.Create(this);
            _console = await _module.InvokeAsync<IJSObjectReference>("open", _terminal, SerialConsoles.SocketPath(Name), force, _self);
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
        if (_connection == Connection.Connecting) _connection = Connection.Open;
        StateHasChanged();
    });

    /// <summary>The socket closed: a <see cref="ConsoleClose"/> code and the relay's reason, or the browser's own.</summary>
    [JSInvokable]
    public Task OnConsoleClosed(int code, string reason) => InvokeAsync(() =>
    {
        (_connection, _closedReason) = Closed(Name, code, reason);
        StateHasChanged();
    });

    /// <summary>Where a console stands once its socket closed with <paramref name="code"/>, and the sentence to show.</summary>
    public static (Connection State, string Reason) Closed(string name, int code, string reason) =>
        (code == ConsoleClose.Busy ? Connection.Busy : Connection.Closed, code switch
        {
            _ when !string.IsNullOrWhiteSpace(reason) => reason,
            1000 => "The console closed.",
            _ => $"The connection to {name}'s console was lost (code {code.ToString(CultureInfo.InvariantCulture)}).",
        });

    private async Task PasteAsync()
    {
        if (_console is null || string.IsNullOrEmpty(_pasteText)) return;
        try
        {
            await _console.InvokeVoidAsync("paste", _pasteText);
            _pasteText = null;
        }
        catch (JSDisconnectedException)
        {
        }
    }

    private async Task StartAsync()
    {
        _starting = true;
        try
        {
            var job = await Commands.RunAsync(Name, LifecycleAction.Start);
            MyJobs.Track(job.Id);
            Snackbar.Add($"Start {Name}: task #{job.Id} queued.", Severity.Info);
        }
        catch (RefusalException e)
        {
            _starting = false;
            Snackbar.Add(e.Message, Severity.Error);
        }
    }

    private async Task CloseConsoleAsync()
    {
        var console = _console;
        _console = null;
        if (console is null) return;
        try
        {
            await console.InvokeVoidAsync("dispose");
            await console.DisposeAsync();
        }
        catch (JSDisconnectedException)
        {
        }
    }

    /// <summary>Black or white, whichever reads better on the label's colour (WCAG relative luminance).</summary>
    public static string InkOn(string colour)
    {
        if (colour.Length != 7 || colour[0] != '#' || !int.TryParse(colour.AsSpan(1), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var rgb))
            return "#ffffff";
        static double Channel(int c)
        {
            var s = c / 255.0;
            return s <= 0.03928 ? s / 12.92 : Math.Pow((s + 0.055) / 1.055, 2.4);
        }
        var l = 0.2126 * Channel((rgb >> 16) & 0xff) + 0.7152 * Channel((rgb >> 8) & 0xff) + 0.0722 * Channel(rgb & 0xff);
        // Contrast with white (1.05 / (l + 0.05)) against contrast with black ((l + 0.05) / 0.05).
        return 1.05 / (l + 0.05) >= (l + 0.05) / 0.05 ? "#ffffff" : "#000000";
    }

    public async ValueTask DisposeAsync()
    {
        Dispose();
        await CloseConsoleAsync();
        if (_module is not null)
        {
            try { await _module.DisposeAsync(); }
            catch (JSDisconnectedException) { }
        }
        _self?.Dispose();
    }
}
