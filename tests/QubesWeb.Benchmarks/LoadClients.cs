using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.WebSockets;

namespace QubesWeb.Benchmarks;

/// <summary>
/// The load benchmark's clients, in a child process of their own so that the console's process (the benchmark's)
/// holds only the console's memory. Talks with its parent in lines: it prints <c>opened ...</c> once the circuits
/// are up, answers <c>status</c>, and closes them on <c>close</c> (as closing tabs) or <c>abort</c> (as crashed ones).
/// </summary>
public static class LoadClients
{
    private static string Arg(string[] args, string name) =>
        args.SkipWhile(a => a != name).Skip(1).FirstOrDefault() ?? throw new ArgumentException($"{name} is required");

    /// <summary><c>load-clients --url U --cookie NAME=VALUE --count N --paths /qubes,/</c></summary>
    public static async Task<int> RunCircuitsAsync(string[] args)
    {
        var baseUri = new Uri(Arg(args, "--url").TrimEnd('/') + "/");
        var cookie = Arg(args, "--cookie");
        var count = int.Parse(Arg(args, "--count"), CultureInfo.InvariantCulture);
        var paths = Arg(args, "--paths").Split(',');
        using var http = new HttpClient(new SocketsHttpHandler { UseCookies = false, AllowAutoRedirect = false, MaxConnectionsPerServer = 64 });
        var clients = Enumerable.Range(0, count).Select(_ => new BlazorCircuitClient(baseUri, cookie, http)).ToArray();
        var openErrors = new List<string>();
        var times = new double[count];
        using (var gate = new SemaphoreSlim(8))
        {
            var sw = Stopwatch.StartNew();
            await Task.WhenAll(clients.Select(async (c, i) =>
            {
                await gate.WaitAsync();
                try
                {
                    var one = Stopwatch.StartNew();
                    await c.OpenAsync(paths[i % paths.Length], TimeSpan.FromSeconds(90));
                    times[i] = one.Elapsed.TotalMilliseconds;
                }
                catch (Exception e)
                {
                    lock (openErrors) openErrors.Add($"circuit {i} on {paths[i % paths.Length]}: {e.GetType().Name}: {e.Message}");
                }
                finally { gate.Release(); }
            }));
            var opened = new Sample("open one circuit (8 at a time)", times.Where(t => t > 0).DefaultIfEmpty(0).ToArray());
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"opened {count - openErrors.Count} failed {openErrors.Count} seconds {sw.Elapsed.TotalSeconds:0.0} median {opened.Median:0} p95 {opened.P95:0}"));
        }
        foreach (var e in openErrors.Take(5)) Console.WriteLine("error " + e);

        string Status()
        {
            var errors = clients.Sum(c => { lock (c.Errors) return c.Errors.Count; }) + openErrors.Count;
            return $"batches {clients.Sum(c => Interlocked.Read(ref c.RenderBatches))} jscalls {clients.Sum(c => Interlocked.Read(ref c.JsCalls))} errors {errors}";
        }

        while (Console.ReadLine() is { } line)
        {
            switch (line.Trim())
            {
                case "status":
                    Console.WriteLine("status " + Status());
                    foreach (var e in clients.SelectMany(c => { lock (c.Errors) return c.Errors.ToArray(); }).Take(5)) Console.WriteLine("error " + e);
                    break;
                case "close":
                case "abort":
                    var clean = line.Trim() == "close";
                    using (var gate = new SemaphoreSlim(16))
                        await Task.WhenAll(clients.Select(async c =>
                        {
                            await gate.WaitAsync();
                            try { await (clean ? c.CloseAsync() : c.AbortAsync()); }
                            catch (Exception e) { lock (c.Errors) c.Errors.Add("close: " + e.Message); }
                            finally { gate.Release(); }
                        }));
                    Console.WriteLine("closed " + Status());
                    foreach (var c in clients) await c.DisposeAsync();
                    return 0;
            }
        }
        return 0;
    }

    /// <summary>
    /// <c>load-refused --url U --count N --cookie-name NAME</c>: N clients without a session (half send none, half a forged
    /// one), each asking for a page, a negotiate and a WebSocket upgrade on /_blazor with the console's own Origin.
    /// </summary>
    public static async Task<int> RunRefusedAsync(string[] args)
    {
        var baseUri = new Uri(Arg(args, "--url").TrimEnd('/') + "/");
        var count = int.Parse(Arg(args, "--count"), CultureInfo.InvariantCulture);
        var cookieName = Arg(args, "--cookie-name");
        var origin = baseUri.GetLeftPart(UriPartial.Authority);
        using var http = new HttpClient(new SocketsHttpHandler { UseCookies = false, AllowAutoRedirect = false, MaxConnectionsPerServer = 64 });
        var statuses = new System.Collections.Concurrent.ConcurrentBag<(string What, int Status, bool Leak)>();
        using var gate = new SemaphoreSlim(32);
        await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
        {
            await gate.WaitAsync();
            try
            {
                var cookie = i % 2 == 0 ? null : $"{cookieName}={Convert.ToBase64String(Guid.NewGuid().ToByteArray())}";
                using (var get = new HttpRequestMessage(HttpMethod.Get, new Uri(baseUri, "qubes")))
                {
                    if (cookie is not null) get.Headers.Add("Cookie", cookie);
                    using var r = await http.SendAsync(get);
                    var body = await r.Content.ReadAsStringAsync();
                    statuses.Add(("page", (int)r.StatusCode, body.Contains("<!--Blazor:", StringComparison.Ordinal) || body.Contains("qube-00001", StringComparison.Ordinal)));
                }
                using (var negotiate = new HttpRequestMessage(HttpMethod.Post, new Uri(baseUri, "_blazor/negotiate?negotiateVersion=1")))
                {
                    negotiate.Headers.Add("Origin", origin);
                    if (cookie is not null) negotiate.Headers.Add("Cookie", cookie);
                    using var r = await http.SendAsync(negotiate);
                    var body = await r.Content.ReadAsStringAsync();
                    statuses.Add(("negotiate", (int)r.StatusCode, body.Contains("connectionToken", StringComparison.Ordinal)));
                }
                using var ws = new ClientWebSocket();
                ws.Options.CollectHttpResponseDetails = true;
                ws.Options.SetRequestHeader("Origin", origin);
                if (cookie is not null) ws.Options.SetRequestHeader("Cookie", cookie);
                var wsUri = new UriBuilder(new Uri(baseUri, "_blazor")) { Scheme = "ws" }.Uri;
                try
                {
                    await ws.ConnectAsync(wsUri, CancellationToken.None);
                    statuses.Add(("upgrade", (int)HttpStatusCode.SwitchingProtocols, true));
                    await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
                }
                catch (WebSocketException)
                {
                    statuses.Add(("upgrade", (int)ws.HttpStatusCode, false));
                }
            }
            catch (Exception e)
            {
                statuses.Add(("error " + e.GetType().Name + ": " + e.Message, 0, false));
            }
            finally { gate.Release(); }
        }));
        foreach (var g in statuses.GroupBy(s => (s.What, s.Status)).OrderBy(g => g.Key.What))
            Console.WriteLine($"refused {g.Key.What} status {g.Key.Status} count {g.Count()} leaked {g.Count(s => s.Leak)}");
        Console.WriteLine("done");
        return 0;
    }
}
