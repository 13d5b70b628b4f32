using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.HostFiltering;
using MudBlazor.Services;
using QubesWeb.Components;
using QubesWeb.Hosting;
using QubesWeb.Hosting.SignIn;

namespace QubesWeb;

/// <summary>
/// Builds the console: the composition root, above every folder. Program.cs and the tests both start it through here,
/// so they run the same app.
/// </summary>
public static class QubesWebHost
{
    /// <summary>The largest message a browser may send the console's circuit: 1 MiB (see where it is set).</summary>
    public const long MaxCircuitMessageBytes = 1L << 20;

    public static WebApplication Build(string[] args)
    {
        args = SwitchesWithValues(args, "--rotate-secret", "--open");
        // Before anything is written: every file the console, SQLite, qemu-img or qemu-io makes is then private to
        // the console's user from the moment it exists (see PrivateFiles for why umask rather than chmod after).
        Hypervisor.Storage.PrivateFiles.RestrictProcessUmask();
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = args,
            ApplicationName = typeof(QubesWebHost).Assembly.GetName().Name,
            // Pinned to the binary's folder: running from any working directory serves the same files.
            ContentRootPath = AppContext.BaseDirectory,
            WebRootPath = Path.Combine(AppContext.BaseDirectory, "wwwroot"),
        });
        // QUBESWEB_PORT, QUBESWEB_DATADIR, QUBESWEB_LIBVIRTURI; flags are added again so they still win.
        builder.Configuration.AddEnvironmentVariables("QUBESWEB_");
        builder.Configuration.AddCommandLine(args, new Dictionary<string, string>
        {
            ["--rotate-secret"] = "SignIn:RotateSecret", ["--open"] = "SignIn:Open",
            ["--port"] = "Port", ["--data-dir"] = "DataDir", ["--libvirt-uri"] = "LibvirtUri", ["--demo"] = "Demo", ["--domain-type"] = "DomainType",
        });

        var options = builder.Configuration.Get<QubesWebOptions>() ?? new QubesWebOptions();
        if (!Path.IsPathRooted(options.DataDir))
            throw new StartupConfigurationException($"DataDir must be an absolute path; '{options.DataDir}' was given.");

        var urls = ListenGuard.ResolveUrls(builder.Configuration, options.Port);
        builder.WebHost.UseUrls([.. urls]);
        builder.WebHost.PreferHostingUrls(false);
        // MudBlazor's _content and blazor.web.js come from the static web assets manifest, also outside Development.
        builder.WebHost.UseStaticWebAssets();

        var hosts = new List<string> { "localhost", "127.0.0.1", "[::1]" };
        hosts.AddRange(urls.Select(u => new Uri(u).Host).Where(h => !hosts.Contains(h)).Select(h => h.Contains(':') && !h.StartsWith('[') ? $"[{h}]" : h));
        builder.Services.Configure<HostFilteringOptions>(o =>
        {
            // DNS rebinding: a page that resolves its own name to 127.0.0.1 still sends its own Host, refused here.
            o.AllowedHosts = hosts;
            o.AllowEmptyHosts = false;
            o.IncludeFailureMessage = true;
        });

        builder.Services.AddQubesWeb(options);
        builder.Services.AddSignIn();
        // Antiforgery and circuit keys stay in the console's own private folder, not the user's profile.
        builder.Services.AddDataProtection().PersistKeysToFileSystem(new DirectoryInfo(options.KeysDir))
            .SetApplicationName("QubesWeb");
        // A form field's text reaches the circuit as one message. SignalR's default cap (32 KB) is below the longest
        // valid notes (64 Ki characters, up to 6 bytes each once JSON-escaped): typing or pasting more than ~32 KB
        // dropped the connection, and the edit with it, instead of showing the rule. The cap is set to hold a field
        // well over its limit, so the rule is what refuses it, with its sentence.
        builder.Services.AddRazorComponents().AddInteractiveServerComponents()
            .AddHubOptions(o => o.MaximumReceiveMessageSize = MaxCircuitMessageBytes);
        // Bottom right: snackbars must not cover the page's own buttons at the top.
        builder.Services.AddMudServices(c => c.SnackbarConfiguration.PositionClass = MudBlazor.Defaults.Classes.Position.BottomRight);

        var app = builder.Build();
        app.UseHostFiltering();
        // Before the security middleware, which refuses a WebSocket from a foreign Origin (it must know one when it sees it).
        app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.FromSeconds(30) });
        app.UseQubesWebSecurity();
        if (!app.Environment.IsDevelopment()) app.UseExceptionHandler("/error", createScopeForErrors: true);
        // Static files reveal nothing (the app's own css, scripts and icons); everything after this needs a session.
        app.UseStaticFiles();
        app.UseMiddleware<SignInMiddleware>();
        app.UseAntiforgery();
        app.MapConsoles();
        // Blazor would add a second CSP header (frame-ancestors 'self'); the console's own one already says 'none'.
        app.MapRazorComponents<App>().AddInteractiveServerRenderMode(o => o.ContentSecurityFrameAncestorsPolicy = null);
        return app;
    }

    /// <summary><c>--open</c> alone means <c>--open true</c>: the configuration's command line wants a value after every key.</summary>
    private static string[] SwitchesWithValues(string[] args, params string[] switches)
    {
        var result = new List<string>(args.Length);
        for (var i = 0; i < args.Length; i++)
        {
            result.Add(args[i]);
            var alone = i + 1 == args.Length || args[i + 1].StartsWith('-');
            if (alone && switches.Contains(args[i], StringComparer.OrdinalIgnoreCase)) result.Add("true");
        }
        return [.. result];
    }
}
