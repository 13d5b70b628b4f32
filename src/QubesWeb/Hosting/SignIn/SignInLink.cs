using System.ComponentModel;
using System.Diagnostics;
using System.Net;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;
using QubesWeb.Hypervisor.Storage;

namespace QubesWeb.Hosting.SignIn;

/// <summary>
/// Once the console listens: prints the sign-in link once (as Jupyter does), writes it to a file only the console's
/// user can read, and with <c>--open</c> opens dom0's browser on it. The browser is handed a private HTML file that
/// redirects, never the link itself, since a command line is readable by every local user.
/// </summary>
public sealed class SignInLink(IServer server, IHostApplicationLifetime lifetime, SignInSecret secret,
    IOptions<QubesWebOptions> options, IOptions<SignInOptions> signIn, ILogger<SignInLink> log) : IHostedService
{
    /// <summary>The current link; empty until the console listens.</summary>
    public string Url { get; private set; } = "";

    public Task StartAsync(CancellationToken cancellationToken)
    {
        lifetime.ApplicationStarted.Register(Announce);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private void Announce()
    {
        var addresses = server.Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        var address = addresses.FirstOrDefault(a => a.Contains("127.0.0.1", StringComparison.Ordinal)) ?? addresses.FirstOrDefault();
        if (address is null) return;
        Url = $"{address.TrimEnd('/')}/?{SignInMiddleware.TokenParameter}={secret.Token}";
        var o = options.Value;
        PrivateFiles.WriteAllText(o.SignInLinkFile, Url + "\n");
        // Standard output, not the log: the one place the token is shown, and no log sink keeps it.
        Console.Out.WriteLine($"QubesWeb: sign in at {Url}");
        Console.Out.WriteLine($"QubesWeb: the link is also in {o.SignInLinkFile}");
        Console.Out.Flush();
        if (signIn.Value.Open) OpenBrowser(o);
    }

    private void OpenBrowser(QubesWebOptions o)
    {
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable("DISPLAY")) && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("WAYLAND_DISPLAY")))
        {
            log.LogInformation("--open: no desktop session here (neither DISPLAY nor WAYLAND_DISPLAY is set); open the link above yourself.");
            return;
        }
        var page = Path.Combine(o.DataDir, "sign-in.html");
        var link = WebUtility.HtmlEncode(Url);
        PrivateFiles.WriteAllText(page, $"""
            <!DOCTYPE html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url={link}"><title>QubesWeb</title></head>
            <body><p><a href="{link}">Open QubesWeb</a></p></body></html>
            """);
        try
        {
            var start = new ProcessStartInfo("xdg-open") { UseShellExecute = false };
            start.ArgumentList.Add(new Uri(page).AbsoluteUri);
            using var process = Process.Start(start);
        }
        catch (Win32Exception e)
        {
            log.LogWarning("--open: could not start xdg-open ({Error}); open the link above yourself.", e.Message);
        }
    }
}
