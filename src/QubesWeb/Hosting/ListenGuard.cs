using System.Net;

namespace QubesWeb.Hosting;

/// <summary>The console was configured to do something it must not; the message says what to change.</summary>
public sealed class StartupConfigurationException(string message) : Exception(message);

/// <summary>
/// The console is loopback-only: whoever reaches it owns every qube. Every way ASP.NET Core can be told where to
/// listen (--urls, ASPNETCORE_URLS, appsettings "Urls", HTTP_PORTS, Kestrel endpoints) is checked, and anything but
/// a loopback address stops the start.
/// </summary>
public static class ListenGuard
{
    /// <summary>The URLs to listen on; throws when any configured one is not loopback.</summary>
    public static IReadOnlyList<string> ResolveUrls(IConfiguration config, int port)
    {
        foreach (var key in new[] { "http_ports", "https_ports" })
            if (!string.IsNullOrWhiteSpace(config[key]))
                throw new StartupConfigurationException(
                    $"'{key}' (ASPNETCORE_{key.ToUpperInvariant()}) makes the server listen on every interface; QubesWeb listens on loopback only. Remove it and use --Port instead.");

        foreach (var endpoint in config.GetSection("Kestrel:Endpoints").GetChildren())
        {
            var url = endpoint["Url"];
            if (url is not null) Check(url, $"Kestrel:Endpoints:{endpoint.Key}:Url");
        }

        var urls = config["urls"];
        if (!string.IsNullOrWhiteSpace(urls))
        {
            var list = urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            foreach (var u in list) Check(u, "urls");
            return list;
        }
        if (port is < 0 or > 65535)
            throw new StartupConfigurationException($"Port must be between 1 and 65535 (0 for a free one); {port} was given.");
        // Port 0 means "any free port": only one address then, since the two loopbacks would get different ports.
        return port == 0 ? ["http://127.0.0.1:0"] : [$"http://127.0.0.1:{port}", $"http://[::1]:{port}"];
    }

    private static void Check(string url, string source)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            // Kestrel's wildcards (http://*:PORT, http://+:PORT) are not URLs to Uri, yet bind every interface: say so.
            throw new StartupConfigurationException($"'{url}' ({source}) is not a loopback http URL such as http://127.0.0.1:{QubesWebOptions.DefaultPort}; QubesWeb listens on loopback only.");
        if (!IsLoopbackHost(uri.Host))
            throw new StartupConfigurationException(
                $"'{url}' ({source}) is not a loopback address. QubesWeb controls every qube and listens on 127.0.0.1 and ::1 only; use http://127.0.0.1:PORT.");
    }

    public static bool IsLoopbackHost(string host)
    {
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase)) return true;
        var h = host.Trim('[', ']');
        return IPAddress.TryParse(h, out var ip) && IPAddress.IsLoopback(ip);
    }
}
