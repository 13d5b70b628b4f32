// The console listens on loopback only: every way of pointing it elsewhere stops the start with a sentence saying so.
using Microsoft.Extensions.Configuration;
using QubesWeb.Hosting;

namespace QubesWeb.UnitTests;

public sealed class ListenGuardTests
{
    private static IConfiguration Config(params (string Key, string Value)[] values) =>
        new ConfigurationBuilder()
            .AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value)))
            .Build();

    [Theory]
    [InlineData("http://0.0.0.0:8780")]
    [InlineData("http://[::]:8780")]
    [InlineData("http://myhost:8780")]
    [InlineData("http://example.com:8780")]
    [InlineData("http://localhost.evil.example:8780")]
    [InlineData("http://127.0.0.1.evil.example:8780")]
    [InlineData("http://192.168.1.10:8780")]
    [InlineData("http://*:8780")]
    [InlineData("http://+:8780")]
    [InlineData("http://127.0.0.1:8780;http://0.0.0.0:8781")]
    public void A_non_loopback_url_is_refused_with_a_message_saying_loopback(string urls)
    {
        var error = Assert.Throws<StartupConfigurationException>(() => ListenGuard.ResolveUrls(Config(("urls", urls)), 8780));

        Assert.Contains("loopback", error.Message);
    }

    [Fact]
    public void A_non_loopback_kestrel_endpoint_is_refused_with_a_message_saying_loopback()
    {
        var error = Assert.Throws<StartupConfigurationException>(() =>
            ListenGuard.ResolveUrls(Config(("Kestrel:Endpoints:Http:Url", "http://0.0.0.0:5000")), 8780));

        Assert.Contains("loopback", error.Message);
        Assert.Contains("Kestrel:Endpoints:Http:Url", error.Message);
    }

    [Theory]
    [InlineData("http_ports")]
    [InlineData("https_ports")]
    public void Http_ports_is_refused_because_it_listens_on_every_interface(string key)
    {
        var error = Assert.Throws<StartupConfigurationException>(() => ListenGuard.ResolveUrls(Config((key, "8080")), 8780));

        Assert.Contains("loopback", error.Message);
        Assert.Contains(key, error.Message);
    }

    [Theory]
    [InlineData("http://127.0.0.1:8780")]
    [InlineData("http://[::1]:8780")]
    [InlineData("http://localhost:8780")]
    [InlineData("http://LOCALHOST:8780")]
    [InlineData("http://127.0.0.1:8780;http://[::1]:8780")]
    public void A_loopback_url_is_accepted_as_given(string urls)
    {
        var resolved = ListenGuard.ResolveUrls(Config(("urls", urls)), 8780);

        Assert.Equal(urls.Split(';'), resolved);
    }

    [Fact]
    public void Without_urls_the_port_is_served_on_both_loopback_addresses()
    {
        Assert.Equal(["http://127.0.0.1:8780", "http://[::1]:8780"], ListenGuard.ResolveUrls(Config(), 8780));
    }

    [Fact]
    public void Port_zero_gives_one_IPv4_loopback_url()
    {
        var url = Assert.Single(ListenGuard.ResolveUrls(Config(), 0));

        Assert.Equal("http://127.0.0.1:0", url);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(65536)]
    public void A_port_out_of_range_is_refused(int port)
    {
        var error = Assert.Throws<StartupConfigurationException>(() => ListenGuard.ResolveUrls(Config(), port));

        Assert.Contains("between 1 and 65535", error.Message);
    }

    [Theory]
    [InlineData("localhost", true)]
    [InlineData("127.0.0.1", true)]
    [InlineData("127.1.2.3", true)]
    [InlineData("[::1]", true)]
    [InlineData("::1", true)]
    [InlineData("0.0.0.0", false)]
    [InlineData("[::]", false)]
    [InlineData("evil.example", false)]
    public void Loopback_hosts_are_told_apart(string host, bool loopback) =>
        Assert.Equal(loopback, ListenGuard.IsLoopbackHost(host));
}
