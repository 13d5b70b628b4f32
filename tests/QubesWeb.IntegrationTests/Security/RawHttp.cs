// HTTP the way HttpClient refuses to send it (an empty or missing Host, a repeated header): bytes over a TcpClient.
using System.Net.Sockets;
using System.Text;

namespace QubesWeb.IntegrationTests.Security;

public static class RawHttp
{
    /// <summary>Sends <paramref name="head"/> (request line and headers, CRLF-separated, no final blank line) and returns the status code.</summary>
    public static async Task<(int Status, string Response)> SendAsync(string baseUrl, string head)
    {
        var uri = new Uri(baseUrl);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var client = new TcpClient();
        await client.ConnectAsync(uri.Host, uri.Port, timeout.Token);
        await using var stream = client.GetStream();
        var request = Encoding.ASCII.GetBytes(head.TrimEnd('\r', '\n') + "\r\nConnection: close\r\n\r\n");
        await stream.WriteAsync(request, timeout.Token);

        // Connection: close: the server ends the stream after the response.
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer, timeout.Token);
        var response = Encoding.ASCII.GetString(buffer.ToArray());
        var statusLine = response.Split("\r\n", 2)[0];
        var parts = statusLine.Split(' ', 3);
        Assert.True(parts.Length >= 2 && parts[0].StartsWith("HTTP/1.", StringComparison.Ordinal), $"Not an HTTP response: '{statusLine}'");
        return (int.Parse(parts[1]), response);
    }
}
