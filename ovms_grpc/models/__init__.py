"""The model manager: repositories, versions, servables."""
